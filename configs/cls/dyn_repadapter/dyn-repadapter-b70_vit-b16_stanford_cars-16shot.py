# Dyn-RepAdapter, exit thresholds calibrated on val to 70 % of the backbone FLOPs before testing, ViT-B/16, stanford_cars 16-shot
_base_ = ['./dyn-repadapter_vit-b16_stanford_cars-16shot.py']
exit_budget = 0.7
