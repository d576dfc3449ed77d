# Demo stage 1: a 6-block ViT (width 96, patch 4, 7x7 tokens) trained from scratch on 5 of the 10 Fashion-MNIST classes
# The five classes the adaptation never uses: T-shirt/top, Pullover, Sandal,
# Sneaker and Bag (30,000 training images, random crop with 2 pixels of
# padding + horizontal flip, 3 epochs); validated on their 5,000 test images.
_base_ = ['./_base_/demo_runtime.py']
fashion_root = '/usr/share/datasets/fashion-mnist'
seen_classes = [0, 2, 5, 7, 8]
vit_arch = dict(embed_dims=96, num_layers=6, num_heads=3,
                feedforward_channels=384)

# mmpretrain's own ViT: the pretraining knows nothing of mmdyt, the adaptation
# configs load its checkpoint into DyTVisionTransformer.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', arch=vit_arch, img_size=28,
                  patch_size=4, out_type='cls_token', final_norm=True),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=len(seen_classes), in_channels=96,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
data_preprocessor = dict(num_classes=len(seen_classes))
# ActivationLoggerHook of the runtime needs a DyTVisionTransformer.
custom_hooks = []

dataset = dict(type='IDXDataset', data_root=fashion_root, classes='fashion-mnist',
               class_subset=seen_classes)
train_dataloader = dict(
    batch_size=128, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(dataset, split='train', pipeline=[
        dict(type='RandomCrop', crop_size=28, padding=2),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs')]))
val_dataloader = dict(
    batch_size=500, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, split='test', pipeline=[dict(type='PackInputs')]))
val_evaluator = dict(type='Accuracy', topk=1)
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=3)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=50))
