"""VTAB-1K as laid out by the PEFT literature (NOAH, FacT, SSF, DyT)."""
import os.path as osp
from typing import Optional

from mmengine.registry import DATASETS

from .base import ClsBaseDataset, read_annotation_list

# task folder name -> (group, number of classes); the folder names and class
# counts of NOAH's / FacT's ``vtab-1k`` release.
VTAB1K_TASKS = {
    'cifar': ('natural', 100),
    'caltech101': ('natural', 102),
    'dtd': ('natural', 47),
    'oxford_flowers102': ('natural', 102),
    'oxford_iiit_pet': ('natural', 37),
    'svhn': ('natural', 10),
    'sun397': ('natural', 397),
    'patch_camelyon': ('specialized', 2),
    'eurosat': ('specialized', 10),
    'resisc45': ('specialized', 45),
    'diabetic_retinopathy': ('specialized', 5),
    'clevr_count': ('structured', 8),
    'clevr_dist': ('structured', 6),
    'dmlab': ('structured', 6),
    'kitti': ('structured', 4),
    'dsprites_loc': ('structured', 16),
    'dsprites_ori': ('structured', 16),
    'smallnorb_azi': ('structured', 18),
    'smallnorb_ele': ('structured', 9),
}
VTAB1K_GROUPS = ('natural', 'specialized', 'structured')
VTAB1K_SPLITS = ('train800', 'val200', 'train800val200', 'test')


@DATASETS.register_module()
class VTAB1k(ClsBaseDataset):
    """One task of VTAB-1K.

    On disk (paths in the lists are relative to the task folder)::

        data_root/<task>/images/...
        data_root/<task>/train800.txt        # lines `images/xxx.jpg 3`
        data_root/<task>/val200.txt
        data_root/<task>/train800val200.txt
        data_root/<task>/test.txt

    Args:
        data_root (str): Folder holding the task folders; if ``task`` is
            None it is the task folder itself.
        task (str, optional): Task folder name, a key of ``VTAB1K_TASKS``.
        split (str): One of ``VTAB1K_SPLITS``. Default 'train800val200'.
        num_classes (int, optional): Overrides the table (for a task not in
            it). Class names are ``'0' .. str(num_classes - 1)``.
        check_files (bool): Check that every listed image exists (a missing
            one is named with its list file and line). Default True.
        **kwargs: See :class:`ClsBaseDataset`.
    """

    def __init__(self,
                 data_root: str,
                 task: Optional[str] = None,
                 split: str = 'train800val200',
                 num_classes: Optional[int] = None,
                 check_files: bool = True,
                 **kwargs):
        if split not in VTAB1K_SPLITS:
            raise ValueError(f'VTAB1k: split {split!r} not in {VTAB1K_SPLITS}')
        if task is None:
            task = osp.basename(osp.normpath(data_root))
            task_dir = data_root
        else:
            task_dir = osp.join(data_root, task)
        if num_classes is None:
            if task not in VTAB1K_TASKS:
                raise ValueError(
                    f'VTAB1k: unknown task {task!r}; known tasks: '
                    f'{", ".join(VTAB1K_TASKS)} (or pass num_classes=)')
            num_classes = VTAB1K_TASKS[task][1]
        self.task = task
        self.split = split
        self.task_dir = task_dir
        self.check_files = check_files
        kwargs.setdefault('classes', [str(i) for i in range(num_classes)])
        super().__init__(ann_file=osp.join(task_dir, f'{split}.txt'), **kwargs)

    def load_data_list(self):
        data_list = []
        for rel, label, lineno in read_annotation_list(self.ann_file,
                                                       self.num_classes):
            img_path = osp.join(self.task_dir, rel)
            if self.check_files and not osp.isfile(img_path):
                raise FileNotFoundError(f'{self.ann_file}:{lineno}: image '
                                        f'not found: {img_path}')
            data_list.append(dict(img_path=img_path, gt_label=label,
                                  source=f'{self.ann_file}:{lineno}'))
        return data_list
