# Full tuning (dense DINOv2-B/14: the FLOPs reference), VTAB-1K (task cifar, the 19 tasks via tools/analysis_tools/vtab_table.py)
_base_ = [
    '../_base_/models/dinov2-b14_full.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=100))
# 1/10 of the PEFT learning rate for full tuning (DyT App. A.2)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
