# DyT r=0.9, d=8, ViT-B/16, VTAB-1K (Table 5; task cifar, the 19 tasks via tools/analysis_tools/vtab_table.py)
_base_ = ['./dyt-r0.5-d8_vit-b16_vtab1k.py']
model = dict(rate_loss=dict(target_rate=0.9))
