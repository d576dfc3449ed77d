import numpy as np
import pytest
from mmaction.registry import TRANSFORMS

import mmdyt  # noqa: F401

DEFAULT_SCOPE = 'mmaction'


def clip(num_frames=4, seed=0):
    """Distinct frames (32, 48, 3) uint8 with structure for the geometric ops."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 48, dtype=np.float32)[None, :, None]
    return [np.clip(ramp + rng.normal(0, 20, (32, 48, 3)), 0, 255).astype(np.uint8)
            for _ in range(num_frames)]


def test_every_frame_gets_the_draws_of_one_image():
    aug = TRANSFORMS.build(dict(type='ClipRandAugment'))
    frames = clip()
    changed = 0
    for seed in range(20):
        np.random.seed(seed)
        state = np.random.get_state()
        out = aug(dict(imgs=list(frames)))['imgs']
        after_clip = np.random.get_state()[1].copy()
        for frame, got in zip(frames, out):
            np.random.set_state(state)
            np.testing.assert_array_equal(got, aug.randaugment(dict(img=frame))['img'])
        # the generator moves on as after one image
        np.testing.assert_array_equal(after_clip, np.random.get_state()[1])
        changed += not np.array_equal(out[0], frames[0])
    assert changed >= 15  # 4 ops at p=0.5: a clip is left as it is 1 time in 16


def test_identical_frames_stay_identical():
    aug = TRANSFORMS.build(dict(type='ClipRandAugment'))
    frames = clip(num_frames=1) * 8
    for seed in range(10):
        np.random.seed(seed)
        out = aug(dict(imgs=list(frames)))['imgs']
        assert all(np.array_equal(out[0], img) for img in out[1:])


def test_empty_clip_is_an_error():
    aug = TRANSFORMS.build(dict(type='ClipRandAugment'))
    with pytest.raises(ValueError, match='without frames'):
        aug(dict(imgs=[]))
