# LoRA r=8 on qkv, ViT-B/16, Flowers-102 (Table 10)
_base_ = [
    '../_base_/models/vit-b16_lora.py', '../_base_/datasets/flowers102_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=102))
