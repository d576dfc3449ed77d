# Dyn-LoRA on a MoCo v3 ViT-B/16, exit thresholds calibrated on val to 70 % of the backbone FLOPs, VTAB-1K (Table 3)
_base_ = ['./dyn-lora-mocov3_vit-b16_vtab1k.py']
exit_budget = 0.7
