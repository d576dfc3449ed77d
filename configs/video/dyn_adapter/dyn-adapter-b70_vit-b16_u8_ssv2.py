# Dyn-Adapter, exit thresholds calibrated to 70 % of the backbone FLOPs before testing, ViT-B/16, SSv2 8 frames
_base_ = ['./dyn-adapter_vit-b16_u8_ssv2.py']
exit_budget = 0.7
