import pytest
from mmaction.datasets import VideoDataset
from mmengine.dataset import Compose

import mmdyt  # noqa: F401

DEFAULT_SCOPE = 'mmaction'


def pipeline(skip_corrupt=False, frame_interval=4):
    return [
        dict(type='CheckedDecordInit', skip_corrupt=skip_corrupt),
        dict(type='SampleFrames', clip_len=4, frame_interval=frame_interval, num_clips=1),
        dict(type='CheckedDecordDecode', skip_corrupt=skip_corrupt),
    ]


def test_real_clip_decodes(video_dir):
    results = Compose(pipeline())(dict(filename=str(video_dir / 'bikes.mp4'), label=0,
                                       start_index=0, modality='RGB'))
    assert len(results['imgs']) == 4
    assert results['imgs'][0].shape == (272, 640, 3)


@pytest.mark.parametrize('name', ['truncated.mp4', 'random.mp4', 'missing.mp4'])
def test_unreadable_video_error_names_the_file(video_dir, name):
    path = str(video_dir / name)
    with pytest.raises(ValueError, match=f'cannot read video {path}'):
        Compose(pipeline())(dict(filename=path, label=0, start_index=0, modality='RGB'))


def test_decode_error_names_the_file(video_dir):
    path = str(video_dir / 'carphone_pristine.mp4')
    init, _, decode = (t for t in Compose(pipeline()).transforms)
    results = init(dict(filename=path, label=0, start_index=0, modality='RGB'))
    results.update(frame_inds=[0, 10_000], clip_len=2, num_clips=1)
    with pytest.raises(ValueError, match=f'cannot read video {path}'):
        decode(results)


def test_skip_corrupt_warns_and_training_draws_another_video(video_dir):
    ann = video_dir / 'train.txt'
    ann.write_text('random.mp4 1\nbikes.mp4 0\n')
    dataset = VideoDataset(str(ann), pipeline(skip_corrupt=True),
                           data_prefix=dict(video=str(video_dir)))
    with pytest.warns(UserWarning, match='skipping corrupt video: .*random.mp4'):
        sample = dataset[0]
    assert sample['filename'].endswith('bikes.mp4') and sample['label'] == 0
