"""The dense model a DyT model is compared with, and its FLOPs."""
import torch

from ..models.backbones import DyTSwinTransformer, DyTVisionTransformer
from ..models.backbones.dyt_vit import SUPERVISED_FAMILY
from ..models.record import ForwardRecord


def dense_baseline(backbone):
    """mmpretrain's own ``VisionTransformer`` (``SwinTransformer`` for a
    :class:`DyTSwinTransformer`) of the DyT backbone's arch (no adapters, no
    dispatchers), in eval mode: the model a user would otherwise run. A
    foundation family (DINOv2, CLIP, SigLIP) gets its :func:`dense_twin`,
    which equals timm's model of the family."""
    from mmpretrain.models import SwinTransformer, VisionTransformer
    if isinstance(backbone, DyTSwinTransformer):
        arch = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in backbone.arch_settings.items()}
        model = SwinTransformer(arch=arch, img_size=backbone.img_size,
                                patch_size=backbone.patch_size,
                                window_size=backbone.window_size, drop_path_rate=0.0,
                                out_indices=tuple(backbone.out_indices),
                                pad_small_map=backbone.pad_small_map)
        model.eval()
        return model
    if backbone.family_settings != SUPERVISED_FAMILY:
        return dense_twin(backbone)
    arch = {k: backbone.arch_settings[k] for k in
            ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')}
    model = VisionTransformer(arch=arch, img_size=backbone.img_size,
                              patch_size=backbone.patch_size,
                              out_type='cls_token', final_norm=backbone.final_norm)
    model.eval()  # mmpretrain's train() returns None, so no chaining
    return model


def dense_twin(backbone):
    """A plain :class:`DyTVisionTransformer` (no adapters, no dispatchers) of
    ``backbone``'s arch and family (DINOv2's LayerScale and registers, CLIP's
    pre-norm, SigLIP's pooling ...), in eval mode."""
    return DyTVisionTransformer(arch=dict(backbone.arch_settings), img_size=backbone.img_size,
                                patch_size=backbone.patch_size, dispatch=None, adapter_dim=None,
                                final_norm=backbone.final_norm, out_type=backbone.out_type,
                                out_indices=backbone.out_indices,
                                **backbone.family_settings).eval()


def dense_flops(backbone, inputs):
    """(B,) multiply-adds per sample of the dense ViT of ``backbone``'s arch
    and family (what :func:`dense_baseline` computes), counted by its
    :func:`dense_twin` on ``inputs``."""
    twin = dense_twin(backbone).to(inputs.device)
    record = ForwardRecord()
    with torch.no_grad():
        twin(inputs.float(), record=record)
    return twin.flops(record)
