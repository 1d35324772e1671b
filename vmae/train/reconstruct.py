"""`vmae reconstruct`: a picture of what a VideoMAE checkpoint reconstructs on validation clips.

    vmae reconstruct --init CKPT --data DIR --out FILE.png [--mask-ratio R] [--masking tube]
                     [--num 4] [--frames 4] [--seed 0]

For each of the first ``--num`` readable videos of DATA/val.csv (one centre clip), three rows of
``--frames`` evenly spaced frames: the original, the masked input (masked tubelets grey), and the
reconstruction (visible tubelets copied from the input, masked ones predicted). With normalised
pixel targets the predictions are mapped back to pixels with each target tubelet's own mean and
std, as the official visualiser does, so colours and brightness of masked patches come from the
input and only their structure is the model's; the caption says so. Mask ratio and kind default to
the checkpoint's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from vmae import methods
from vmae.config import PretrainConfig, config_from_dict
from vmae.data import loaders
from vmae.data.dataset import FixedViews
from vmae.data.manifest import DatasetInfo
from vmae.models import build_videomae
from vmae.models.mae import VideoMAE, patchify, unpatchify
from vmae.models.masking import MASKINGS, make_mask
from vmae.models.torch_files import load_torch_file
from vmae.train.cli_common import MissingInputError, add_trust_argument

GREY = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--init", required=True, type=Path, help="VideoMAE pretraining checkpoint (checkpoint.pt)")
    add_trust_argument(parser)
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset folder (its val.csv is used)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--mask-ratio", type=float, help="mask ratio (default: the checkpoint's)")
    parser.add_argument("--masking", choices=list(MASKINGS), help="mask kind (default: the checkpoint's)")
    parser.add_argument("--num", type=int, default=4, help="validation clips shown")
    parser.add_argument("--frames", type=int, default=4, help="frames shown a clip (evenly spaced)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masks")


def load_videomae(path: Path, trust: bool = False) -> tuple[VideoMAE, PretrainConfig]:
    """A VideoMAE model and its config from the checkpoint of a method that reconstructs (vmae.methods)
    (``trust``: ``--trust-checkpoint``, see ``vmae.models.torch_files.load_torch_file``)."""
    if not Path(path).is_file():
        raise MissingInputError(f"{path}: not found: expected a VideoMAE pretraining checkpoint file (--init)")
    ckpt = load_torch_file(path, trust)
    if ckpt.get("method") not in methods.METHODS or not methods.get(ckpt["method"]).reconstructs:
        known = [name for name in methods.names() if methods.get(name).reconstructs]
        raise ValueError(f"{path}: method {ckpt.get('method')!r}; expected a pretraining checkpoint of {known}")
    cfg = config_from_dict(PretrainConfig, ckpt["config"], source=str(path))
    model = build_videomae(cfg.model)
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg


def first_clips(dataset: FixedViews, count: int) -> torch.Tensor:
    """The first ``count`` readable videos' first view -> (count, C, T, H, W) (fewer if the set is small)."""
    clips = []
    for index in range(len(dataset)):
        views, _, ok = dataset[index]
        if ok:
            clips.append(views[0])
        if len(clips) == count:
            break
    if not clips:
        raise RuntimeError(f"{dataset.manifest}: no readable video")
    return torch.stack(clips)


def to_pixels(video: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Normalised (B, C, T, H, W) -> displayable float (B, T, H, W, C) in [0, 1]."""
    pixels = video * torch.tensor(std)[:, None, None, None] + torch.tensor(mean)[:, None, None, None]
    return pixels.clamp(0, 1).permute(0, 2, 3, 4, 1).numpy()


def grey_out(video: torch.Tensor, mask: torch.Tensor, patch_size: int, tubelet_size: int,
             mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Normalised video (B, C, T, H, W) with its masked tubelets set to mid grey."""
    grey = ((GREY - torch.tensor(mean)) / torch.tensor(std)).to(video.dtype)  # (C,)
    patches = patchify(video, patch_size, tubelet_size)  # (B, N, t*p*p*C), channel last
    patches = patches.reshape(*patches.shape[:2], -1, video.shape[1])
    patches[mask] = grey
    _, _, t, h, w = video.shape
    grid = (t // tubelet_size, h // patch_size, w // patch_size)
    return unpatchify(patches.flatten(2), grid, patch_size, tubelet_size)


def render(rows: list[np.ndarray], frames: int, caption: str, out: Path) -> None:
    """rows: 3 per clip, each (T, H, W, C); ``frames`` evenly spaced columns."""
    names = ("original", "masked", "reconstruction")
    total_frames = rows[0].shape[0]
    columns = np.linspace(0, total_frames - 1, frames).round().astype(int)
    fig, axes = plt.subplots(len(rows), frames, figsize=(1.4 * frames + 0.6, 1.4 * len(rows) + 0.9), squeeze=False)
    for r, video in enumerate(rows):
        for c, frame in enumerate(columns):
            ax = axes[r, c]
            ax.imshow(video[frame], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"clip {r // 3 + 1}\n{names[r % 3]}", fontsize=7)
            if r == 0:
                ax.set_title(f"frame {frame}", fontsize=7)
    fig.text(0.5, 0.005, caption, ha="center", va="bottom", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


@torch.no_grad()
def main(args: argparse.Namespace) -> int:
    model, cfg = load_videomae(args.init, args.trust_checkpoint)
    ratio = cfg.mask_ratio if args.mask_ratio is None else args.mask_ratio
    kind = args.masking or cfg.masking
    dataset = loaders.fixed_views(args.data / "val.csv", DatasetInfo.load(args.data), cfg.data, cfg.model,
                                  torch.device("cpu"), clips=1, crops=1)
    video = first_clips(dataset, args.num)
    mask = make_mask(kind, video.shape[0], model.grid, ratio, torch.Generator().manual_seed(args.seed))
    p, t = cfg.model.patch_size, cfg.model.tubelet_size
    recon = model.reconstruct(model(video, mask), video, mask, cfg.norm_pix_loss)
    mean, std = cfg.data.mean, cfg.data.std
    shown = [to_pixels(v, mean, std) for v in (video, grey_out(video, mask, p, t, mean, std), recon)]
    rows = [shown[kind_index][clip] for clip in range(video.shape[0]) for kind_index in range(3)]
    how = ("masked tubelets predicted in per-tubelet normalised pixels and mapped back with each target "
           "tubelet's own mean and std (as the official visualiser): colour and brightness come from the input, "
           "structure from the model" if cfg.norm_pix_loss else "masked tubelets predicted as pixels")
    caption = (f"{args.init}: {kind} masking, ratio {ratio:g}; rows: original / masked input (grey) / "
               f"reconstruction (visible tubelets copied from the input; {how})")
    render(rows, args.frames, caption, args.out)
    print(f"wrote {args.out}")
    return 0
