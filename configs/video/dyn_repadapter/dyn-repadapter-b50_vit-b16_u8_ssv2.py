# Dyn-RepAdapter, exit thresholds calibrated to 50 % of the backbone FLOPs before testing, ViT-B/16, SSv2 8 frames
_base_ = ['./dyn-repadapter_vit-b16_u8_ssv2.py']
exit_budget = 0.5
