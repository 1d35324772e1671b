"""Whether VideoMAE learned its pretext: its loss on held-out clips next to the trivial predictor's.

A pretraining loss alone says nothing: with per-tubelet normalised targets a model that predicts 0
everywhere scores the share of masked tubelets that are not flat. So every VideoMAE run reports its
*pretext skill* on clips it never trained on, with its own masking kind and ratio:

    skill = 1 - loss / trivial_loss

where ``trivial_loss`` is the error of predicting each masked tubelet's own per-channel mean, i.e.
0 for normalised targets (``norm_pix``). Skill 0: no better than knowing nothing; 1: perfect. The
masks are drawn from a generator seeded by the run's seed, so the number is reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from vmae.config import PretrainConfig
from vmae.data.dataset import FixedViews, collate_eval
from vmae.data.transforms import to_device_normalized
from vmae.models.mae import VideoMAE
from vmae.models.masking import make_mask, split_mask

EVAL_SEED_OFFSET = 7_919  # the masks of the held-out clips differ from every training step's


@dataclass(frozen=True)
class PretextSkill:
    """Mean squared errors over every masked target value of the held-out clips."""

    loss: float
    trivial_loss: float
    skill: float
    clips: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _sums(mae: VideoMAE, video: torch.Tensor, cfg: PretrainConfig, generator: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """video: (B, C, T, H, W) normalised -> (squared error sum, trivial squared error sum, values)."""
    mask = make_mask(cfg.masking, video.shape[0], mae.grid, cfg.mask_ratio, generator)
    visible, masked = (index.to(video.device) for index in split_mask(mask))
    pred = mae.forward_indices(video, visible, masked).float()
    target = mae.targets(video, masked, cfg.norm_pix_loss).float()
    channels = video.shape[1]
    pixels = target.reshape(*target.shape[:2], -1, channels)
    trivial = pixels - pixels.mean(dim=-2, keepdim=True)  # each tubelet's own mean predicted
    return (pred - target).pow(2).sum(), trivial.pow(2).sum(), target.numel()


@torch.no_grad()
def pretext_skill(mae: VideoMAE, views: FixedViews, cfg: PretrainConfig, device: torch.device,
                  batch_size: int = 32) -> PretextSkill:
    """The pretext skill of ``mae`` on every readable video of ``views`` (each view a clip)."""
    was_training = mae.training
    mae.eval()
    generator = torch.Generator().manual_seed(cfg.seed + EVAL_SEED_OFFSET)
    error = trivial = torch.zeros((), dtype=torch.float64)
    values = clips = 0
    loader = torch.utils.data.DataLoader(views, batch_size=batch_size, collate_fn=collate_eval)
    for batch, _, _ in loader:
        if not len(batch):
            continue
        video = to_device_normalized(batch.flatten(0, 1), device, cfg.data.mean, cfg.data.std)
        e, t, n = _sums(mae, video, cfg, generator)
        error, trivial, values, clips = error + e.double().cpu(), trivial + t.double().cpu(), values + n, clips + len(video)
    mae.train(was_training)
    if not values:
        raise ValueError(f"{views.manifest}: no readable held-out clips to measure the pretext skill on")
    loss, trivial_loss = float(error) / values, float(trivial) / values
    skill = 1.0 - loss / trivial_loss if trivial_loss > 0 else float("nan")
    return PretextSkill(loss=loss, trivial_loss=trivial_loss, skill=skill, clips=clips)
