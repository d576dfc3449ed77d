"""RandAugment on a video clip: timm's policy (the reference DyT code's
``rand-m7-n4-mstd0.5-inc1`` on SSv2) with the same ops, magnitudes, signs and
on / off draws on every frame of the clip."""
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


@TRANSFORMS.register_module()
class ClipRandAugment(BaseTransform):
    """mmpretrain's ``RandAugment`` (timm's op sets and per-op magnitude noise)
    applied alike to all frames of ``results['imgs']``.

    The ops draw their random numbers from numpy's global generator; every
    frame is augmented from the same generator state, so the frames share all
    draws, and the generator then moves on as after one image. As timm, each
    op application (an op may be picked twice) draws its own magnitude
    ``N(magnitude_level, magnitude_std)``, clipped to ``[0, total_level]``.

    Args:
        policies (str | list[dict]): ``'timm_increasing'`` (timm's ``inc1``
            op set) or policy dicts, as mmpretrain's ``RandAugment``.
        num_policies (int): ops per clip (timm's ``n``).
        magnitude_level (float): mean magnitude (timm's ``m``).
        magnitude_std (float | str): std of the per-op magnitude noise
            (timm's ``mstd``), 0 for none, ``'inf'`` for uniform.
        total_level (float): the top of the magnitude scale (timm's 10).
        hparams (dict | None): op defaults, e.g. ``pad_val`` (the fill of
            rotate / shear / translate) and ``interpolation``; None is timm's
            fill 128.

    The defaults are the reference's ``rand-m7-n4-mstd0.5-inc1``.

    Shapes:
        imgs: list of T frames (H, W, 3) uint8 -> the same.
    """

    def __init__(self, policies='timm_increasing', num_policies=4, magnitude_level=7,
                 magnitude_std=0.5, total_level=10, hparams=None):
        # mmpretrain's ops, built in its scope (the pipeline runs in mmaction's)
        import mmpretrain.datasets.transforms  # noqa: F401
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            self.randaugment = PRETRAIN_TRANSFORMS.build(dict(
                type='RandAugment', policies=policies, num_policies=num_policies,
                magnitude_level=magnitude_level, magnitude_std=magnitude_std,
                total_level=total_level, hparams=hparams or dict(pad_val=128)))

    def transform(self, results):
        imgs = results['imgs']
        if not len(imgs):
            raise ValueError('ClipRandAugment got a clip without frames')
        state = np.random.get_state()
        augmented = []
        for img in imgs:
            np.random.set_state(state)
            augmented.append(self.randaugment(dict(img=img))['img'])
        results['imgs'] = augmented
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}({self.randaugment!r})'
