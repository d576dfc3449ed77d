# CIFAR-10 (mmpretrain's CIFAR10, python pickles in data/cifar10) with
# CIFAR-100's recipe and loaders (DyT Tables 7, 10).
_base_ = ['./cifar100_bs128_rrc.py']
dataset_type = 'CIFAR10'
data_root = 'data/cifar10'
data_preprocessor = dict(num_classes=10)
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
