# VTAB-1K / few-shot schedule of the reference code (DyT's main_vtab.py, and
# RepAdapter's train.py that Dyn-Adapter follows): AdamW lr 1e-3, weight decay
# 1e-4, 10 linear warm-up epochs, then cosine decay to a minimum lr of 1e-5 at
# epoch 100 (the DyT paper gives no warm-up and decays to 0:
# vtab1k_adamw_100e.py).
_base_ = ['./vtab1k_adamw_100e.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=90, eta_min=1e-5, by_epoch=True,
         begin=10, end=100, convert_to_iter_based=True),
]
