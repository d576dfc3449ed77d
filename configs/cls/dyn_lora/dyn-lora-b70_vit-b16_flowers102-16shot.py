# Dyn-LoRA, exit thresholds calibrated on val to 70 % of the backbone FLOPs before testing, ViT-B/16, flowers102 16-shot
_base_ = ['./dyn-lora_vit-b16_flowers102-16shot.py']
exit_budget = 0.7
