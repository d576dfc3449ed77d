# DyT Table 7: AdamW, base lr 1e-3 x batch / 256 (4e-3 at batch 1024 =
# 8 GPUs x 128), weight decay 0.01, 20 warm-up epochs, cosine decay, 100
# epochs. With another batch size, `--auto-scale-lr` rescales the lr.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3 * 1024 / 256, weight_decay=0.01),
    clip_grad=None,
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=80, eta_min=0.0, by_epoch=True,
         begin=20, end=100, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
