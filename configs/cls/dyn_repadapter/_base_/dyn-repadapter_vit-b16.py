# Dyn-RepAdapter: Dyn-Adapter's early exits with RepAdapter (d=8, 2 groups)
# before attn.qkv and mlp.fc1, re-parameterised into them for deployment
# (mmdyt.models.petl.merge_petl; calibrate_exits.py merges before measuring).
_base_ = ['../../dyn_adapter/_base_/dyn-adapter_vit-b16.py']
model = dict(backbone=dict(petl=dict(_delete_=True, type='rep_adapter', dim=8, groups=2,
                                     scale=1.0, dropout=0.1)))
