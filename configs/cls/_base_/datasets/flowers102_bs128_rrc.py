# Oxford Flowers-102 (mmpretrain Flowers102: jpg/image_*.jpg + imagelabels.mat + setid.mat):
# the full trainval split for training, test for testing, with Food-101's
# recipe and loaders (DyT Tables 7, 10): RandomResizedCrop to 224 for training,
# short side 256 + center crop 224 for testing, 128 images per GPU.
_base_ = ['./food101_bs128_rrc.py']
dataset_type = 'Flowers102'
data_root = 'data/flowers102'
data_preprocessor = dict(num_classes=102)
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
