# DyT Table 8: AdamW, lr = 1e-3 x batch / 256 (auto_scale_lr scales the base
# lr by the real total batch), weight decay 0.01, cosine decay, 12 epochs.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=12, eta_min=0, by_epoch=True, begin=0, end=12,
         convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=True, base_batch_size=256)
