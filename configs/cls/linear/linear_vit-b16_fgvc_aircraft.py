# Linear probe (frozen ViT-B/16), FGVC-Aircraft (Table 10)
_base_ = [
    '../_base_/models/vit-b16_linear.py', '../_base_/datasets/fgvc_aircraft_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=100))
