# Dyn-LoRA, exit thresholds calibrated on val to 50 % of the backbone FLOPs before testing, ViT-B/16, VTAB-1K (task cifar; others via --cfg-options)
_base_ = ['./dyn-lora_vit-b16_vtab1k.py']
exit_budget = 0.5
