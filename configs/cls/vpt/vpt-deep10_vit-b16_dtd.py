# VPT-deep with 10 prompts per layer, ViT-B/16, DTD (Table 10)
_base_ = [
    '../_base_/models/vit-b16_vpt.py', '../_base_/datasets/dtd_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=47))
