"""FLOPs of a DyT segmentor, part by part (fvcore convention: one
multiply-add is one FLOP).

The backbone is counted exactly by ``DyTVisionTransformer.flops(record)`` (only the
tokens the skipping path computes; attention matmuls included). mmengine's
``FlopAnalyzer`` would count ``scaled_dot_product_attention`` as zero, so it
is used only for the neck and heads, which see the backbone's feature maps.
"""
import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer


class _HeadPath(nn.Module):
    """Neck + one head on backbone features, in the inference form
    (head logits at 1/4 resolution, resized to the input like
    ``decode_head.predict`` does)."""

    def __init__(self, neck, head, img_shape):
        super().__init__()
        self.neck = neck
        self.head = head
        self.img_shape = img_shape

    def forward(self, feats):
        if self.neck is not None:
            feats = self.neck(feats)
        logits = self.head.forward(feats)
        return nn.functional.interpolate(logits, size=self.img_shape, mode='bilinear',
                                         align_corners=self.head.align_corners)


def _analyze(module, feats):
    analyzer = FlopAnalyzer(module, (feats, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return float(analyzer.total()), {k: float(v) for k, v in analyzer.by_module().items()}


@torch.no_grad()
def segmentor_flops(model, img_shape=(512, 512), inputs=None):
    """Per-image FLOPs of ``model`` (a :class:`DyTEncoderDecoder`) on one
    ``img_shape`` input (whole-image inference).

    Args:
        model (DyTEncoderDecoder): the segmentor; put in eval mode for the
            count and restored afterwards.
        img_shape (tuple[int, int]): (H, W) of the input.
        inputs (Tensor | None): (1, 3, H, W) normalised image, so that the
            dispatchers see real content; zeros when None.

    Returns:
        dict: ``backbone``, ``neck``, ``decode_head`` (with the final resize
        to the input size), ``auxiliary_head`` (training only, not in the
        total) and ``total`` = backbone + neck + decode_head, all in FLOPs.
    """
    was_training = model.training
    model.eval()
    try:
        if inputs is None:
            param = next(model.parameters())
            inputs = param.new_zeros(1, 3, *img_shape)
        feats, records = model.recorded(model.backbone, inputs)
        backbone = float(model.dyt_backbone.flops(records[0])[0])
        neck = model.neck if model.with_neck else None
        decode_total, by_module = _analyze(_HeadPath(neck, model.decode_head, img_shape), feats)
        result = dict(backbone=backbone, neck=by_module.get('neck', 0.0))
        result['decode_head'] = decode_total - result['neck']
        result['auxiliary_head'] = 0.0
        if model.with_auxiliary_head:
            pyramid = neck(feats) if neck is not None else feats
            result['auxiliary_head'], _ = _analyze(
                _HeadPath(None, model.auxiliary_head, img_shape), pyramid)
    finally:
        model.train(was_training)
    result['total'] = result['backbone'] + result['neck'] + result['decode_head']
    return result
