"""VideoMAE V2's dual masking (Wang et al., CVPR 2023, "VideoMAE V2: Scaling Video Masked
Autoencoders with Dual Masking"; public code OpenGVLab/VideoMAEv2): a cheaper VideoMAE.

The encoder sees the visible tubelets of the run's own masking (``masking``, ``mask_ratio``: tube
0.9 in the paper), as VideoMAE's. The decoder too is masked: it reconstructs only the tubelets a
*running cell* mask keeps (``dual.decoder_mask_ratio``: 0.5 in the paper), so its sequence is the
visible tokens plus half of all positions instead of all of them, and the loss is the error on
those decoded positions (normalised pixels, as VideoMAE). The running cell: every 2x2 spatial cell
drops ``int(4 * ratio)`` of its 4 positions from the decoder, in a pattern that advances by one
position each time slot (so each position is decoded in some slots), from a random start per clip.
Everything else is VideoMAE's: the model (its checkpoint is a VideoMAE's: fine-tuning takes
``encoder.*``), the clips a video (``data.repeated_sampling``), the schedule, and the pretext measure
(vmae.train.pretext: reconstruction of every encoder-masked tubelet of held-out clips against the
trivial predictor).

Left out of the paper's recipe: its billion-parameter models and progressive training (UnlabeledHybrid
pretraining, then post-pretraining on labelled K710), and its distillation; the decoder mask's
positions that the encoder also sees are decoded too, as in the public code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vmae.config import PretrainConfig, _check
from vmae.methods import register
from vmae.methods.videomae import VideoMAEMethod, VideoMAEObjective, mask_indices, masked_step
from vmae.models import build_videomae
from vmae.models.mae import VideoMAE
from vmae.models.masking import make_mask, split_mask
from vmae.models.pos_embed import sincos_rows
from vmae.train.distributed import DistEnv, wrap_model
from vmae.train.flops import count_flops
from vmae.train.optim import param_groups
from vmae.train.step import StepFn, Trainable


@dataclass
class DualMaskingConfig:
    """The decoder's masking (the encoder's is the run's ``masking`` / ``mask_ratio``)."""

    decoder_mask_ratio: float = 0.5  # share of positions the decoder leaves out (running cell, 2x2)

    def validate(self) -> None:
        _check(1 <= int(4 * self.decoder_mask_ratio) <= 3 and self.decoder_mask_ratio < 1,
               "dual.decoder_mask_ratio", self.decoder_mask_ratio,
               "in [0.25, 1): 1 to 3 of a 2x2 cell's 4 positions left out of the decoder")


def running_cell_mask(batch: int, grid: tuple[int, int, int], ratio: float, generator: torch.Generator
                      ) -> torch.Tensor:
    """The decoder's mask (B, T'*H'*W') bool, True = not decoded: in each 2x2 cell of a slot,
    ``int(4 * ratio)`` consecutive positions (raster order within the cell, cyclically) from an
    offset that is the clip's random start plus the slot's index."""
    slots, height, width = grid
    dropped = int(4 * ratio)
    start = torch.randint(4, (batch,), generator=generator)
    # (B, T', 4): each cell position's place in the slot's queue, the first ``dropped`` places dropped
    place = (torch.arange(4)[None, None, :] + start[:, None, None] + 1 + torch.arange(slots)[None, :, None]) % 4
    cell = (place < dropped).view(batch, slots, 2, 2)
    return cell.repeat(1, 1, height // 2, width // 2).flatten(1)


def dual_loss(mae: VideoMAE, video: torch.Tensor, visible_idx: torch.Tensor, decode_idx: torch.Tensor,
              norm_pix: bool) -> torch.Tensor:
    """video: (B, C, T, H, W) normalised; visible_idx: (B, N_vis) the encoder's tokens; decode_idx:
    (B, N_dec) the positions the decoder reconstructs (each in positional order) -> the MSE between
    the predicted and the target pixels there (fp32 scalar)."""
    x = mae.encoder_to_decoder(mae.encoder.forward_features(video, visible_idx))  # (B, N_vis, D_dec)
    num_tokens = math.prod(mae.grid)
    pos = sincos_rows(mae.decoder_pos_embed, num_tokens).expand(x.shape[0], -1, -1).to(x.dtype)

    def at(index: torch.Tensor) -> torch.Tensor:
        return pos.gather(1, index[..., None].expand(-1, -1, pos.shape[-1]))

    x = torch.cat([x + at(visible_idx), mae.mask_token.to(x.dtype) + at(decode_idx)], dim=1)
    pred = mae.decoder(x, decode_idx.shape[1])  # (B, N_dec, t*p*p*C)
    return F.mse_loss(pred.float(), mae.targets(video, decode_idx, norm_pix))


class DualMaskingObjective(VideoMAEObjective):
    """VideoMAE's objective (normalisation, compile, DDP) with the dual-masking loss:
    forward(clips uint8 or normalised (B, C, T, H, W), visible_idx, decode_idx) -> loss."""

    def objective(self, video: torch.Tensor, visible_idx: torch.Tensor, decode_idx: torch.Tensor) -> torch.Tensor:
        return dual_loss(self.mae, video, visible_idx, decode_idx, self.norm_pix)


def masks(cfg: PretrainConfig, rows: int, grid: tuple[int, int, int], generator: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's and the decoder's masks (rows, N) on the CPU, drawn in that order."""
    encoder = make_mask(cfg.masking, rows, grid, cfg.mask_ratio, generator)
    return encoder, running_cell_mask(rows, grid, cfg.dual.decoder_mask_ratio, generator)


def dual_step(net: nn.Module, cfg: PretrainConfig, env: DistEnv, grid: tuple[int, int, int]) -> StepFn:
    """``masked_step`` of a ``DualMaskingObjective``: the encoder's and the decoder's masks a clip
    (``masks``), the encoder's visible and the decoder's kept (decoded) positions."""
    return masked_step(net, cfg, env, lambda rows, g: masks(cfg, rows, grid, g),
                       lambda m, device: (mask_indices(m[0], device)[0], mask_indices(m[1], device)[0]))


@register
class VideoMAEV2Method(VideoMAEMethod):
    """VideoMAE with its decoder masked too: VideoMAE's model, clips a video and pretext skill; its own
    objective, step and FLOPs."""

    name = "videomaev2"
    label = "VideoMAE V2 (dual masking)"
    section = ("dual", DualMaskingConfig)
    reconstructs = False

    def validate(self, cfg: PretrainConfig) -> None:
        side = cfg.model.img_size // cfg.model.patch_size
        _check(side % 2 == 0, "model.img_size", cfg.model.img_size,
               f"an even number of patches a side with method=videomaev2 (its 2x2 running cells), got {side}")

    def trainable(self, cfg: PretrainConfig, env: DistEnv, steps_per_epoch: int) -> Trainable:
        model = build_videomae(cfg.model)
        net = wrap_model(DualMaskingObjective(model, cfg), env, cfg.compile)
        groups = param_groups(model, cfg.optim.weight_decay)
        return Trainable(model, net, groups, dual_step(net, cfg, env, model.grid),
                         cfg.optim.batch_size * cfg.data.repeated_sampling)

    def train_flops(self, cfg: PretrainConfig, clips: int) -> float:
        def loss(mae: VideoMAE, video: torch.Tensor) -> torch.Tensor:
            encoder, decoder = masks(cfg, video.shape[0], mae.grid, torch.Generator().manual_seed(0))
            visible, decoded = (split_mask(m)[0].to("meta") for m in (encoder, decoder))
            return dual_loss(mae, video, visible, decoded, cfg.norm_pix_loss)

        return count_flops(build_videomae(cfg.model), loss, cfg.model, backward=True) * clips
