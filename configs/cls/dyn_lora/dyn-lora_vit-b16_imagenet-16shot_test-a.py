# Dyn-LoRA, ViT-B/16 trained on ImageNet 16-shot, tested on ImageNet-A (its 200 classes) (Table 6)
_base_ = ['./dyn-lora_vit-b16_imagenet-16shot.py', '../_base_/datasets/imagenet_variants.py']
test_dataloader = dict(dataset={{_base_.imagenet_a}})
test_evaluator = {{_base_.imagenet_variant_evaluator}}
