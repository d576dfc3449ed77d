# Linear probe of a frozen SigLIP-B/16 (attention-pooled), VTAB-1K (task cifar, the 19 tasks via tools/analysis_tools/vtab_table.py)
_base_ = [
    '../_base_/models/siglip-b16_linear.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=100))
