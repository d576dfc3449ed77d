"""DynamicViT (Rao et al., NeurIPS 2021): before given blocks a light
prediction module scores the patch tokens. Training: Gumbel-softmax keep
decisions, hierarchical (a dropped token stays dropped), applied as an
attention mask so that every token still runs; inference: the top
``int(n0 x keep_ratio ** s)`` tokens of stage s are kept and the sequence
really gets shorter. Losses: the keep-ratio loss per stage and, from a dense
teacher pass, the KL of the logits and the MSE of the kept final tokens."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..flops import attention_matmul_flops, layer_norm_flops, linear_layers_flops
from ..losses import distillation_kl
from .base import BlockHook, TokenReduction, check_layers, check_rate, default_layers


class KeepPredictor(nn.Module):
    """DynamicViT's prediction module: per-token features (first half) next
    to the policy-weighted mean of the kept tokens (second half), then an
    MLP to keep / drop log-probabilities.

    Shapes:
        x: (B, n, C) patch tokens, policy (B, n) or None -> (B, n, 2).
    """

    def __init__(self, embed_dims):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dims)
        self.embed = nn.Linear(embed_dims, embed_dims)
        self.score = nn.Sequential(
            nn.Linear(embed_dims, embed_dims // 2), nn.GELU(),
            nn.Linear(embed_dims // 2, embed_dims // 4), nn.GELU(),
            nn.Linear(embed_dims // 4, 2))

    def forward(self, x, policy=None):
        x = F.gelu(self.embed(self.norm(x)))
        local, pooled = x.chunk(2, dim=-1)
        if policy is None:
            pooled = pooled.mean(1, keepdim=True)
        else:
            weights = policy[..., None]
            pooled = (pooled * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True)
        return self.score(torch.cat([local, pooled.expand_as(local)], -1)).log_softmax(-1)

    def flops(self, num_tokens):
        """LayerNorm, the linear layers and the policy-weighted pooling (one
        query over ``num_tokens``, half of :func:`attention_matmul_flops`)."""
        return (layer_norm_flops(self.norm, num_tokens) + num_tokens * linear_layers_flops(self) +
                attention_matmul_flops(1, num_tokens, self.embed.out_features // 2) // 2)


class DynamicViTHook(BlockHook):
    """Prediction before the stage blocks; attention masked by the policy in
    training; the final tokens kept for the token distillation."""

    CARRIED = ('policy', 'init_patches')

    def __init__(self, dvit, block, record, previous):
        super().__init__(block, record, previous)
        self.dvit = dvit
        self.stage = dvit.layers.index(record.index) \
            if dvit.enabled and record.index in dvit.layers else None

    def enter(self, x):
        if self.stage is None:
            return x
        num_patches = x.shape[1] - 1
        self.carry.setdefault('init_patches', num_patches)
        policy = self.carry.get('policy')
        previous = policy[:, 1:] if policy is not None else None
        scores = self.dvit.predictors[self.stage](x[:, 1:], previous)
        self.record.part_tokens['predictor'] = num_patches
        if self.block.training:
            keep = F.gumbel_softmax(scores, hard=True)[..., 0]
            keep = keep if previous is None else keep * previous
            self.carry['decision'] = keep
            self.carry['policy'] = torch.cat([keep.new_ones(keep.shape[0], 1), keep], 1)
            return x
        count = self.dvit.keep_counts(self.carry['init_patches'])[self.stage]
        index = scores[..., 0].topk(count, dim=1).indices.sort(1).values
        patches = x[:, 1:].gather(1, index[..., None].expand(-1, -1, x.shape[-1]))
        self.record.num_tokens = 1 + count
        return torch.cat([x[:, :1], patches], 1)

    def delta(self, part, delta):
        policy = self.carry.get('policy')
        if part != 'attn' or policy is None:
            return delta
        block = self.block
        return lambda tokens, key_mask=None, packed=None, positions=None: block.attn(
            block.norm1(tokens), key_mask=policy)

    def after(self, part, x):
        if self.block.training and self.record.index == self.dvit.num_layers - 1 \
                and part == self.block.parts[-1]:
            self.carry['tokens'] = x
        return x


class DynamicViT(TokenReduction):
    """Learned token pruning at a few stages.

    Args:
        num_layers (int): blocks of the backbone.
        embed_dims (int): C.
        keep_ratio (float): rho, fraction of the tokens each stage keeps of
            the previous one's, in (0, 1].
        layers (Sequence[int] | None): blocks before which a predictor
            prunes (0-based); None = 1/4, 1/2 and 3/4 of the depth (ViT-B:
            3, 6, 9).
        ratio_weight (float): weight of the keep-ratio loss (2.0).
        distill_weight (float): weight of the KL and token distillation
            losses (0.5 each); 0 = no teacher pass.
    """

    HOOK = DynamicViTHook

    def __init__(self, num_layers, embed_dims, keep_ratio=0.7, layers=None, ratio_weight=2.0,
                 distill_weight=0.5):
        super().__init__()
        self.num_layers = num_layers
        self.keep_ratio = check_rate(keep_ratio, 'keep_ratio', 'dynamicvit')
        self.layers = check_layers(default_layers(num_layers) if layers is None else layers,
                                   num_layers, 'dynamicvit')
        if ratio_weight < 0 or distill_weight < 0:
            raise ValueError(f'dynamicvit: ratio_weight and distill_weight must be >= 0, got '
                             f'{ratio_weight} and {distill_weight}')
        self.ratio_weight = ratio_weight
        self.distill_weight = distill_weight
        self.predictors = nn.ModuleList(KeepPredictor(embed_dims) for _ in self.layers)

    def block_hook(self, block, record, previous):
        """Always a hook: a disabled (teacher) pass keeps its final tokens."""
        return self.HOOK(self, block, record, previous)

    def keep_counts(self, num_patches):
        """Patch tokens kept after each stage in inference:
        ``int(num_patches x keep_ratio ** (s + 1))``, at least 1."""
        counts = [int(num_patches * self.keep_ratio**(s + 1)) for s in range(len(self.layers))]
        if min(counts) < 1:
            raise ValueError(f'dynamicvit: keep_ratio={self.keep_ratio} keeps no token of '
                             f'{num_patches} by stage {len(self.layers)}')
        return counts

    def flops(self, block, record):
        if 'predictor' not in record.part_tokens:
            return 0
        stage = self.layers.index(record.index)
        return self.predictors[stage].flops(record.part_tokens['predictor'])

    def losses(self, record):
        """``loss_ratio``: the mean over stages of ``(mean kept - rho ** s) ** 2``
        per sample, batch mean, times ``ratio_weight``."""
        decisions = [b.carry['decision'] for b in record.blocks if 'decision' in b.carry]
        if not decisions:
            return {}
        loss = sum(((keep.mean(1) - self.keep_ratio**(s + 1))**2).mean()
                   for s, keep in enumerate(decisions))
        return {'loss_ratio': self.ratio_weight * loss / len(decisions)}

    def distill_losses(self, record, teacher_record, logits, teacher_logits, norm):
        """``loss_distill`` (KL(teacher || student) of the logits) and
        ``loss_token_distill`` (MSE of the final-normed patch tokens the
        student kept), each times ``distill_weight``; the teacher is detached.
        """
        tokens = norm(record.blocks[-1].carry['tokens'])[:, 1:]
        teacher = norm(teacher_record.blocks[-1].carry['tokens'])[:, 1:].detach()
        kept = record.blocks[-1].carry['policy'][:, 1:] > 0.5
        token_loss = (tokens[kept] - teacher[kept]).pow(2).mean() if kept.any() \
            else tokens.sum() * 0
        return {'loss_distill': self.distill_weight * distillation_kl(logits,
                                                                      teacher_logits.detach()),
                'loss_token_distill': self.distill_weight * token_loss}
