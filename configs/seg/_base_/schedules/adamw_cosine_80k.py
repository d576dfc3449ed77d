# The 160k schedule (AdamW lr 1e-3, wd 0.05, batch 16, 1500 iterations of
# linear warm-up then cosine decay, DyT Table 9) over 80k iterations.
_base_ = ['./adamw_cosine_160k.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=1500, end=80000),
]
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
