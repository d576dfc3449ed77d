# VTAB-1K (DyT App. A.2): AdamW, lr 1e-3 cosine-decayed to 0 over 100 epochs,
# batch 64 on one GPU; evaluated once, after the last epoch.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=None,
)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=100, eta_min=0.0, by_epoch=True,
         begin=0, end=100, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=100)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
