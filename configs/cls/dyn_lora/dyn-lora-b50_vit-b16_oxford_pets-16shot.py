# Dyn-LoRA, exit thresholds calibrated on val to 50 % of the backbone FLOPs before testing, ViT-B/16, oxford_pets 16-shot
_base_ = ['./dyn-lora_vit-b16_oxford_pets-16shot.py']
exit_budget = 0.5
