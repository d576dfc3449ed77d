# Dyn-Adapter, ViT-B/16 trained on ImageNet 16-shot, tested on ImageNet-Sketch (Table 6)
_base_ = ['./dyn-adapter_vit-b16_imagenet-16shot.py', '../_base_/datasets/imagenet_variants.py']
test_dataloader = dict(dataset={{_base_.imagenet_sketch}})
test_evaluator = {{_base_.imagenet_variant_evaluator}}
