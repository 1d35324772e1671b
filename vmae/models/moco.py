"""MoCo v3 on the video ViT: projector + predictor MLPs, a momentum encoder, symmetric InfoNCE.

The two views are two clips of one video (different times, independent spatial augmentation).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from vmae.models.vit import VideoViT


def build_mlp(num_layers: int, in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """MoCo v3 MLP: (Linear without bias, BN, ReLU) x (num_layers - 1), Linear, BN(affine=False)."""
    layers: list[nn.Module] = []
    for i in range(num_layers):
        dim_in = in_dim if i == 0 else hidden_dim
        last = i == num_layers - 1
        dim_out = out_dim if last else hidden_dim
        layers.append(nn.Linear(dim_in, dim_out, bias=False))
        layers.append(nn.BatchNorm1d(dim_out, affine=not last))
        if not last:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@torch.no_grad()
def concat_all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x: (B, K)`` from all processes along dim 0 (no gradient); identity when single."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def cosine_momentum(step: int, total_steps: int, base: float = 0.99) -> float:
    """Momentum rising from ``base`` at step 0 to 1 at ``total_steps`` on a half cosine."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / total_steps) + 1.0) / 2.0


class MoCoV3(nn.Module):
    """MoCo v3: ``forward(view1, view2, momentum) -> loss`` (both views: (B, C, T, H, W)).

    ``base_encoder`` (a VideoViT, pooled ``fc_norm`` features) -> ``projector`` (3-layer MLP) ->
    ``predictor`` (2-layer MLP) gives queries; ``momentum_encoder`` -> ``momentum_projector`` (EMA
    copies, no gradient) give keys. Loss = ctr(q1, k2) + ctr(q2, k1), each InfoNCE scaled by
    2 * temperature; keys are gathered over processes under torch.distributed.
    """

    def __init__(self, encoder: VideoViT, proj_dim: int, hidden_dim: int, temperature: float):
        super().__init__()
        self.temperature = temperature
        self.base_encoder = encoder
        self.projector = build_mlp(3, encoder.embed_dim, hidden_dim, proj_dim)
        self.predictor = build_mlp(2, proj_dim, hidden_dim, proj_dim)
        self.momentum_encoder = copy.deepcopy(encoder)
        self.momentum_projector = copy.deepcopy(self.projector)
        for param in self._momentum_params():
            param.requires_grad_(False)

    def _base_params(self) -> list[nn.Parameter]:
        return [*self.base_encoder.parameters(), *self.projector.parameters()]

    def _momentum_params(self) -> list[nn.Parameter]:
        return [*self.momentum_encoder.parameters(), *self.momentum_projector.parameters()]

    @torch.no_grad()
    def update_momentum(self, momentum: float) -> None:
        """momentum_param <- momentum * momentum_param + (1 - momentum) * base_param."""
        torch._foreach_lerp_(self._momentum_params(), self._base_params(), 1.0 - momentum)

    def contrastive_loss(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """InfoNCE of queries q: (B, K) against all gathered keys k, positives on the diagonal."""
        q = F.normalize(q.float(), dim=1)
        k = concat_all_gather(F.normalize(k.float(), dim=1))
        logits = q @ k.t() / self.temperature
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        labels = torch.arange(q.shape[0], device=q.device) + q.shape[0] * rank
        return F.cross_entropy(logits, labels) * (2 * self.temperature)

    def _query(self, view: torch.Tensor) -> torch.Tensor:
        features = self.base_encoder.forward_head(self.base_encoder.forward_features(view), pre_logits=True)
        return self.predictor(self.projector(features))

    @torch.no_grad()
    def _key(self, view: torch.Tensor) -> torch.Tensor:
        features = self.momentum_encoder.forward_head(self.momentum_encoder.forward_features(view), pre_logits=True)
        return self.momentum_projector(features)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, momentum: float) -> torch.Tensor:
        q1, q2 = self._query(view1), self._query(view2)
        self.update_momentum(momentum)
        k1, k2 = self._key(view1), self._key(view2)
        return self.contrastive_loss(q1, k2) + self.contrastive_loss(q2, k1)
