# Full tuning (all ViT weights, lr / 10): the dense UperNet + DINOv2-B/14, ADE20K 160k iters, 512x512
_base_ = [
    '../_base_/models/upernet_dyt-dinov2-b14.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/adamw_cosine_160k.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(dispatch=None, adapter_dim=None, freeze_pretrained=False),
    rate_loss=None)
optim_wrapper = dict(optimizer=dict(lr=0.0001))
