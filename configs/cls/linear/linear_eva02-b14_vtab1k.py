# Linear probe, EVA-02-B/14 (frozen, averaged patch tokens), VTAB-1K (task cifar, the 19 tasks via tools/analysis_tools/vtab_table.py)
_base_ = [
    '../_base_/models/eva02-b14_linear.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=100))
