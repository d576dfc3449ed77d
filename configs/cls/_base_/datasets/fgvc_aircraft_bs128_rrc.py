# FGVC-Aircraft 2013b variants (mmpretrain FGVCAircraft: data/images/*.jpg + data/images_variant_<split>.txt):
# the full trainval split for training, test for testing, with Food-101's
# recipe and loaders (DyT Tables 7, 10): RandomResizedCrop to 224 for training,
# short side 256 + center crop 224 for testing, 128 images per GPU.
_base_ = ['./food101_bs128_rrc.py']
dataset_type = 'FGVCAircraft'
data_root = 'data/fgvc-aircraft-2013b'
data_preprocessor = dict(num_classes=100)
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
