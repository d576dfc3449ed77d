# Dyn-LoRA: Dyn-Adapter's early exits with LoRA (rank 8) on the q and v slices
# of every qkv projection (LoRA's form, 0.29 M; targets=['qkv'] is one update
# of the fused layer) instead of the adapter; stage dropout acts on the LoRA
# branch dropout. Merge LoRA into qkv for deployment (mmdyt.models.petl.merge_petl).
_base_ = ['../../dyn_adapter/_base_/dyn-adapter_vit-b16.py']
model = dict(backbone=dict(petl=dict(
    _delete_=True, type='lora', rank=8, alpha=8.0, targets=['q', 'v'])))
