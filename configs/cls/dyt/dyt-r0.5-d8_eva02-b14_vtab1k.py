# DyT r=0.5, d=8, EVA-02-B/14 (SwiGLU, rotary positions), VTAB-1K (task cifar, the 19 tasks via tools/analysis_tools/vtab_table.py)
_base_ = [
    '../_base_/models/eva02-b14_dyt.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(adapter_dim=8, adapter_scale=1.0),
    head=dict(num_classes=100),
    rate_loss=dict(target_rate=0.5))
