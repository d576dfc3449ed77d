# SigLIP ViT-B/16 + Dynamic Tuning: MLP dispatch (every token dispatchable: no
# class token), adapter d=64, rate loss r=0.5.
_base_ = ['./siglip-b16_linear.py']
model = dict(
    backbone=dict(dispatch='mlp', adapter_dim=64, num_experts=1, tau=5.0),
    rate_loss=dict(type='ActivationRateLoss', target_rate=0.5, loss_weight=2.0))
