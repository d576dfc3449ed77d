"""Food-101 in its official release layout."""
import os.path as osp

from mmengine.registry import DATASETS

from .base import ClsBaseDataset, require_file

FOOD101_SPLITS = ('train', 'test')


def read_class_names(path: str):
    """One class name a line (blank lines skipped); errors name the file."""
    require_file(path, 'class list')
    with open(path, encoding='utf-8') as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise ValueError(f'{path}: empty class list')
    return names


@DATASETS.register_module()
class Food101Dataset(ClsBaseDataset):
    """Food-101 (registered as ``Food101Dataset``).

    The name differs from the class name of the dataset because mmpretrain
    registers its own ``Food101``, which would shadow ours from the
    ``mmpretrain`` scope.

    On disk::

        data_root/images/<class>/<id>.jpg
        data_root/meta/classes.txt     # one class name a line, label order
        data_root/meta/train.txt       # lines `<class>/<id>` (no extension)
        data_root/meta/test.txt

    Args:
        data_root (str): The ``food-101`` folder.
        split (str): 'train' or 'test'. Default 'train'.
        check_files (bool): Check that every listed image exists. Default
            True.
        **kwargs: See :class:`ClsBaseDataset` (``classes`` defaults to
            ``meta/classes.txt``).
    """

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 check_files: bool = True,
                 **kwargs):
        if split not in FOOD101_SPLITS:
            raise ValueError(f'Food101Dataset: split {split!r} not in '
                             f'{FOOD101_SPLITS}')
        self.split = split
        self.check_files = check_files
        self.root = data_root
        given = kwargs.get('classes') or (kwargs.get('metainfo')
                                          or {}).get('classes')
        if not given:
            kwargs['classes'] = read_class_names(
                osp.join(data_root, 'meta', 'classes.txt'))
        super().__init__(ann_file=osp.join(data_root, 'meta', f'{split}.txt'),
                         **kwargs)

    def load_data_list(self):
        path = require_file(self.ann_file, 'split file')
        index = {name: i for i, name in enumerate(self.classes)}
        data_list = []
        with open(path, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                cls_name, sep, _ = line.partition('/')
                if not sep or not cls_name:
                    raise ValueError(f'{path}:{lineno}: malformed line '
                                     f"{line!r}, expected '<class>/<id>'")
                if cls_name not in index:
                    raise ValueError(f'{path}:{lineno}: class {cls_name!r} '
                                     'is not in the class list')
                img_path = osp.join(self.root, 'images', line + '.jpg')
                if self.check_files and not osp.isfile(img_path):
                    raise FileNotFoundError(f'{path}:{lineno}: image not '
                                            f'found: {img_path}')
                data_list.append(
                    dict(img_path=img_path, gt_label=index[cls_name]))
        if not data_list:
            raise ValueError(f'{path}: empty split (no `<class>/<id>` lines)')
        return data_list
