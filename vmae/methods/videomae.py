"""VideoMAE (Tong et al. 2022): masked tubelet reconstruction with an asymmetric encoder-decoder.

Views: ``data.repeated_sampling`` clips a decoded video, all in the batch, so one step sees
``optim.batch_size * repeated_sampling`` clips (the lr-scaling batch). Masks (``masking``,
``mask_ratio``; vmae.models.masking) come from a CPU generator seeded by (seed, step, rank), and
their token indices reach the GPU in one asynchronous copy from pinned memory (``mask_indices``).
With gradient accumulation a micro-step takes its rows of the masks its optimiser step would draw at
once, so an accumulated step sees the same clips and masks as the step without accumulation.
Pretext measure: the reconstruction loss on held-out clips next to the trivial predictor's
(vmae.train.pretext). Its config is the shared one (``norm_pix_loss``, the model's decoder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vmae.config import PretrainConfig
from vmae.data.dataset import FixedViews
from vmae.data.transforms import normalize
from vmae.methods import Method, register
from vmae.models import build_videomae
from vmae.models.mae import VideoMAE
from vmae.models.masking import make_mask, split_mask
from vmae.train.distributed import DistEnv, wrap_model
from vmae.train.flops import count_flops
from vmae.train.optim import param_groups
from vmae.train.pretext import pretext_skill
from vmae.train.step import Micro, StepFn, StepOutput, Trainable, derive_seed


def mask_indices(mask: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A CPU mask (B, N) -> ``(visible_idx (B, N_vis), masked_idx (B, N_masked))`` on ``device``.

    Split on the CPU (no device sync), written into one pinned buffer on CUDA and moved by one
    ``non_blocking`` copy: truly asynchronous, where a copy from pageable memory would first wait
    for everything queued on the GPU.
    """
    visible, masked = split_mask(mask)
    flat = torch.empty(mask.numel(), dtype=torch.long, pin_memory=device.type == "cuda")
    torch.cat([visible.flatten(), masked.flatten()], out=flat)
    flat = flat.to(device, non_blocking=True)
    return flat[: visible.numel()].view_as(visible), flat[visible.numel():].view_as(masked)


class VideoMAEObjective(nn.Module):
    """The whole VideoMAE training objective as one module, so ``torch.compile`` fuses the input
    normalisation, the model and the targets into one graph, and DDP wraps it.

    forward(clips (B, C, T, H, W) uint8 from the loader, or float already normalised,
    visible_idx (B, N_vis), masked_idx (B, N_masked) on the clips' device) -> the MSE between the
    predicted and the target pixels of the masked tubelets (fp32 scalar). Its state dict is the
    VideoMAE's under ``mae.``; checkpoint the VideoMAE itself.
    """

    def __init__(self, mae: VideoMAE, cfg: PretrainConfig):
        super().__init__()
        self.mae = mae
        self.mean, self.std = cfg.data.mean, cfg.data.std
        self.norm_pix = cfg.norm_pix_loss

    def forward(self, clips: torch.Tensor, visible_idx: torch.Tensor, masked_idx: torch.Tensor) -> torch.Tensor:
        video = normalize(clips, self.mean, self.std) if clips.dtype == torch.uint8 else clips
        return self.objective(video, visible_idx, masked_idx)

    def objective(self, video: torch.Tensor, visible_idx: torch.Tensor, target_idx: torch.Tensor) -> torch.Tensor:
        """The loss on the normalised ``video`` (B, C, T, H, W): the masked tubelets' pixels."""
        return self.mae.loss(video, visible_idx, target_idx, self.norm_pix)


def masked_step(net: nn.Module, cfg: PretrainConfig, env: DistEnv,
                draw: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]],
                indices: Callable[[tuple[torch.Tensor, ...], torch.device], tuple[torch.Tensor, ...]]) -> StepFn:
    """Batch ``(clips (B, k, C, T, H, W), labels, bad)`` -> ``net(clips, *indices)`` over B*k clips.

    ``draw(rows, generator)``: the step's masks, each (rows, N) on the CPU. The masks of optimiser
    step ``s`` are drawn for all ``micro.count * B*k`` clips of the step from a generator seeded by
    (seed, s, rank); micro-step j takes rows ``j*B*k .. (j+1)*B*k - 1`` (without accumulation: all
    of them). ``indices(masks, device)``: the index tensors ``net`` takes after the clips."""

    def step(batch, step_index: int, micro: Micro = Micro()) -> StepOutput:
        clips, _, bad = batch
        clips = clips.flatten(0, 1).to(env.device, non_blocking=True)  # (B*k, C, T, H, W)
        rows = clips.shape[0]
        generator = torch.Generator().manual_seed(derive_seed(cfg.seed, step_index, env.rank))
        masks = tuple(m[micro.index * rows:(micro.index + 1) * rows] for m in draw(rows * micro.count, generator))
        return StepOutput(net(clips, *indices(masks, clips.device)), clips=rows, bad=bad.sum())

    return step


def videomae_step(net: nn.Module, cfg: PretrainConfig, env: DistEnv, grid: tuple[int, int, int]) -> StepFn:
    """``masked_step`` of a ``VideoMAEObjective`` (``net``): one mask of ``cfg.masking`` a clip,
    its visible and masked indices."""
    return masked_step(net, cfg, env, lambda rows, g: (make_mask(cfg.masking, rows, grid, cfg.mask_ratio, g),),
                       lambda masks, device: mask_indices(masks[0], device))


def videomae_clip_flops(cfg: PretrainConfig) -> float:
    """One VideoMAE training clip: the encoder on the visible tubelets, the decoder on all, backward."""
    def loss(mae, clips):
        mask = make_mask(cfg.masking, clips.shape[0], mae.grid, cfg.mask_ratio, torch.Generator().manual_seed(0))
        visible, masked = (index.to("meta") for index in split_mask(mask))
        return mae.loss(clips, visible, masked, cfg.norm_pix_loss)

    return count_flops(build_videomae(cfg.model), loss, cfg.model, backward=True)


@register
class VideoMAEMethod(Method):
    name = "videomae"
    label = "VideoMAE"
    masked = True
    reconstructs = True
    encoder_prefix = "encoder."
    pretext_clips = 1

    def clips_a_video(self, cfg: PretrainConfig) -> int:
        return cfg.data.repeated_sampling

    def trainable(self, cfg: PretrainConfig, env: DistEnv, steps_per_epoch: int) -> Trainable:
        model = build_videomae(cfg.model)
        net = wrap_model(VideoMAEObjective(model, cfg), env, cfg.compile)
        groups = param_groups(model, cfg.optim.weight_decay)
        return Trainable(model, net, groups, videomae_step(net, cfg, env, model.grid),
                         cfg.optim.batch_size * cfg.data.repeated_sampling)

    def train_flops(self, cfg: PretrainConfig, clips: int) -> float:
        return videomae_clip_flops(cfg) * clips

    def pretext(self, model: VideoMAE, views: FixedViews, cfg: PretrainConfig, device: torch.device
                ) -> dict[str, Any]:
        return pretext_skill(model, views, cfg, device).as_dict()
