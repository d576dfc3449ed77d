# SVHN from the official train_32x32.mat / test_32x32.mat (mmdyt's SVHN), with
# the CIFAR-100 recipe: RandomResizedCrop to 224 for training (DyT Table 7),
# 128 images per GPU; the samples carry RGB arrays (no LoadImageFromFile).
_base_ = ['./cifar100_bs128_rrc.py']
dataset_type = 'SVHN'
data_root = 'data/svhn'
data_preprocessor = dict(num_classes=10)
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
