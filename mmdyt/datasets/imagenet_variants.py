"""The ImageNet domain-shift test sets (Dyn-Adapter Table 6) from their
folder releases: ImageNet-V2, ImageNet-Sketch, ImageNet-A, ImageNet-R."""
import os
import os.path as osp

from mmengine.registry import DATASETS

from .base import ClsBaseDataset, require_file

IMAGENET_VARIANTS = ('v2', 'sketch', 'a', 'r')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def read_synsets(path):
    """ImageNet's 1000 WordNet ids in class order, from a file with one per
    line whose first token is the id (``LOC_synset_mapping.txt``: ``n01440764
    tench, Tinca tinca``)."""
    with open(require_file(path, 'ImageNet synset file'), encoding='utf-8') as f:
        synsets = [line.split()[0] for line in f if line.strip()]
    if len(synsets) != 1000 or len(set(synsets)) != 1000:
        raise ValueError(f'{path}: expected the 1000 distinct ImageNet synsets, one per line, '
                         f'got {len(synsets)} lines ({len(set(synsets))} distinct)')
    return synsets


@DATASETS.register_module()
class ImageNetVariant(ClsBaseDataset):
    """One of the ImageNet domain-shift test sets, labelled with ImageNet-1k
    class indices so that an ImageNet classifier is tested as it is.

    Folder layouts of the releases:

    * ``'v2'`` (ImageNet-V2, e.g. ``imagenetv2-matched-frequency-format-val``):
      ``<data_root>/<k>/*.jpeg``, ``k`` the ImageNet class index 0-999;
    * ``'sketch'`` (ImageNet-Sketch, ``sketch``): ``<data_root>/<wnid>/*``,
      all 1000 classes;
    * ``'a'`` / ``'r'`` (ImageNet-A / -R): ``<data_root>/<wnid>/*``, 200
      of the classes.

    The metainfo's ``class_indices`` are the ImageNet-1k indices of the
    classes the set holds (all 1000, or the 200 of A and R): evaluate with
    :class:`mmdyt.evaluation.SubsetAccuracy`, which reads the logits of
    those classes only, the standard protocol for A and R.

    Args:
        data_root (str): the release's folder.
        variant (str): 'v2', 'sketch', 'a' or 'r'.
        synset_file (str | None): ImageNet's 1000 synsets in class order
            (:func:`read_synsets`); needed by the wnid folders of 'sketch',
            'a' and 'r'.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``test_mode`` ...).
    """

    def __init__(self, data_root, variant, synset_file=None, **kwargs):
        if variant not in IMAGENET_VARIANTS:
            raise ValueError(f'variant must be one of {IMAGENET_VARIANTS}, got {variant!r}')
        if variant != 'v2' and synset_file is None:
            raise ValueError(f'ImageNet-{variant} folders are WordNet ids: set synset_file '
                             '(ImageNet\'s 1000 synsets in class order, e.g. '
                             'LOC_synset_mapping.txt)')
        self.variant = variant
        self.synsets = read_synsets(synset_file) if synset_file is not None else None
        classes = self.synsets or [str(k) for k in range(1000)]
        super().__init__(classes=classes, data_root=data_root, **kwargs)

    def _class_index(self, folder):
        if self.variant == 'v2':
            if not folder.isdigit() or not 0 <= int(folder) < 1000:
                raise ValueError(f'{osp.join(self.data_root, folder)}: ImageNet-V2 class folders '
                                 'are the class indices 0-999')
            return int(folder)
        if folder not in self.synsets:
            raise ValueError(f'{osp.join(self.data_root, folder)}: {folder!r} is not an ImageNet '
                             'synset of the synset file')
        return self.synsets.index(folder)

    def load_data_list(self):
        if not osp.isdir(self.data_root):
            raise FileNotFoundError(f'ImageNet-{self.variant} folder not found: {self.data_root}')
        data_list, indices = [], set()
        for folder in sorted(os.listdir(self.data_root)):
            path = osp.join(self.data_root, folder)
            if not osp.isdir(path):
                continue
            label = self._class_index(folder)
            images = sorted(name for name in os.listdir(path)
                            if name.lower().endswith(IMAGE_EXTENSIONS))
            data_list += [dict(img_path=osp.join(path, name), gt_label=label) for name in images]
            if images:
                indices.add(label)
        if not data_list:
            raise ValueError(f'ImageNet-{self.variant} folder {self.data_root} holds no images '
                             f'({", ".join(IMAGE_EXTENSIONS)}) in class folders')
        self._metainfo['class_indices'] = sorted(indices)
        return data_list
