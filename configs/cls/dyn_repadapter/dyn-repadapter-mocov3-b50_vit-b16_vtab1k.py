# Dyn-RepAdapter on a MoCo v3 ViT-B/16, exit thresholds calibrated on val to 50 % of the backbone FLOPs, VTAB-1K (Table 3)
_base_ = ['./dyn-repadapter-mocov3_vit-b16_vtab1k.py']
exit_budget = 0.5
