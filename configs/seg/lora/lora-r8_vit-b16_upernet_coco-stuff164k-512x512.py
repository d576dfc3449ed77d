# LoRA (rank 8 on qkv), ViT-B/16 + UperNet, COCO-Stuff164k 80k iters, 512x512
_base_ = [
    '../_base_/models/upernet_dyt-vit-b16.py',
    '../_base_/datasets/coco-stuff164k.py',
    '../_base_/schedules/adamw_cosine_80k.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(dispatch=None, adapter_dim=None,
                  petl=dict(type='lora', rank=8, alpha=8.0, targets=['qkv'])),
    rate_loss=None,
    decode_head=dict(num_classes=171),
    auxiliary_head=dict(num_classes=171))
