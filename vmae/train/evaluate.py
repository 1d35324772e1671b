"""Multi-view evaluation and feature extraction: each video decoded once, outputs averaged over its views.

A video's views (``clips x crops`` of a ``FixedViews`` dataset) go through a
model function; its outputs (softmax probabilities for classification, pooled features for the
linear probe) are averaged per video. Views of several videos are batched into one forward of up to
``clips_per_forward`` clips. Unreadable videos are skipped and counted.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import top_k_accuracy_score

from vmae.atomic import atomic_open
from vmae.data.dataset import FixedViews
from vmae.data.loaders import build_loader
from vmae.data.transforms import to_device_normalized

ClipFn = Callable[[torch.Tensor], torch.Tensor]  # clips (M, C, T, H, W) -> outputs (M, D)


@dataclass
class VideoOutputs:
    """Per readable video: its manifest path, label and view-averaged output."""

    paths: list[str]
    labels: np.ndarray  # (N,) int
    outputs: np.ndarray  # (N, D) float32
    bad_videos: int


def _videos(dataset: FixedViews, num_workers: int) -> Iterator[tuple[int, torch.Tensor, int, int]]:
    """``(index, views (V, C, T, H, W), label, n_bad)`` in manifest order, one video at a time
    (``n_bad`` = 1 and empty views for an unreadable one), decoded ahead by the loader's workers."""
    loader = build_loader(dataset, batch_size=1, shuffle=False, seed=0, num_workers=num_workers, drop_last=False)
    for index, (views, labels, n_bad) in enumerate(loader):
        yield index, views[0] if len(views) else views, int(labels[0]) if len(labels) else -1, n_bad


@torch.no_grad()
def video_outputs(
    fn: ClipFn, dataset: FixedViews, device: torch.device, clips_per_forward: int, num_workers: int
) -> VideoOutputs:
    """Run ``fn`` on every view of every video of ``dataset`` and average per video.

    bf16 autocast on CUDA; outputs are returned as float32 on the CPU.
    """
    paths: list[str] = []
    labels: list[int] = []
    outputs: list[torch.Tensor] = []
    pending: list[torch.Tensor] = []
    bad = 0
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def flush() -> None:
        if not pending:
            return
        views = torch.stack(pending)  # (B, V, C, T, H, W)
        with autocast:
            clips = to_device_normalized(views.flatten(0, 1), device, dataset.source.cfg.mean, dataset.source.cfg.std)
            out = fn(clips).float()
        outputs.append(out.reshape(*views.shape[:2], -1).mean(dim=1).cpu())
        pending.clear()

    for index, views, label, n_bad in _videos(dataset, num_workers):
        if n_bad:
            bad += n_bad
            continue
        paths.append(dataset.path(index))
        labels.append(label)
        pending.append(views)
        if len(pending) * views.shape[0] >= clips_per_forward:
            flush()
    flush()
    if not outputs:
        raise RuntimeError(f"{dataset.manifest}: none of its {len(dataset)} videos could be read")
    return VideoOutputs(paths, np.asarray(labels), torch.cat(outputs).numpy(), bad)


def topk_percent(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Top-k accuracy in percent of ``scores: (N, K)`` (any per-class scores) against ``labels: (N,)``."""
    num_classes = scores.shape[1]
    if k >= num_classes:
        return 100.0
    if num_classes == 2:  # sklearn's binary form: the score of class 1
        scores = scores[:, 1]
    return 100.0 * top_k_accuracy_score(labels, scores, k=k, labels=np.arange(num_classes))


def accuracy_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``{"top1": %, "top5": %}``."""
    return {"top1": topk_percent(scores, labels, 1), "top5": topk_percent(scores, labels, 5)}


def write_predictions(path: Path, result: VideoOutputs) -> None:
    """``path,label,pred,prob``: each video's predicted class and its view-averaged probability."""
    pred = result.outputs.argmax(axis=1)
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "pred", "prob"])
        for video, label, p, probs in zip(result.paths, result.labels, pred, result.outputs):
            writer.writerow([video, int(label), int(p), f"{probs[p]:.6f}"])
