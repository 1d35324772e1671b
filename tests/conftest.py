"""Shared test setup: one thread (the machine has two cores), deterministic seeds, and the fixtures
more than one test module uses: a prepared tiny dataset, toy videos and unreadable ones, tiny models,
the tiny training command line, and a run stopped right after a checkpoint."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def rar_reader() -> str:
    """The RAR reader ``vmae.data.extract`` will use; the test is skipped, with the reason, where there
    is none (a fresh machine may lack unar, bsdtar and libarchive alike)."""
    from vmae.data.extract import rar_tools

    found = rar_tools()
    if not found:
        pytest.skip("no RAR reader here: needs unar or bsdtar on PATH, or libarchive "
                    "(apt-get install unar, or libarchive13)")
    return found[0]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared synthetic-clean folder: 10 classes, 2 train + 1 val + 1 test video a class, 16 frames of
    32x32 (train.csv, val.csv, test.csv, classes.txt, dataset.json, videos/). Treat it as read-only."""
    from vmae.data.prepare import prepare_dataset
    from vmae.data.registry import load_spec

    spec = load_spec("synthetic-clean")
    generator = {**spec.source["generator"], "train_per_class": 2, "val_per_class": 1, "test_per_class": 1,
                 "frames": 16, "size": 32}
    spec = dataclasses.replace(spec, source={**spec.source, "generator": generator})
    out = tmp_path_factory.mktemp("tiny_dataset")
    prepare_dataset(spec, out, workers=1)
    return out


@pytest.fixture(scope="session")
def tiny_run_args() -> list[str]:
    """`vmae pretrain | finetune | linprobe` arguments of a seconds-long run on ``tiny_dataset``: one epoch,
    batches of 10 videos, no warm-up, no loader workers, 8-frame clips, one test clip."""
    return ["--epochs", "1", "optim.batch_size=10", "optim.warmup_epochs=0", "data.num_workers=0",
            "model.num_frames=8", "data.test_clips=1"]


# --------------------------------------------------------------------------- a run stopped as a kill would


class Interrupted(Exception):
    """Stands for a kill right after a checkpoint was written."""


@pytest.fixture()
def killed_after_epoch(monkeypatch: pytest.MonkeyPatch):
    """``with killed_after_epoch(e): run()``: ``run()`` stops (``Interrupted``, caught) right after the
    training loop wrote epoch ``e``'s state, as a kill there would; the loop is unpatched after."""
    from vmae.train import loop

    @contextlib.contextmanager
    def kill(epoch: int) -> Iterator[None]:
        save = loop.save_checkpoint

        def save_then_stop(path, state):
            save(path, state)
            if state["epoch"] == epoch:
                raise Interrupted

        monkeypatch.setattr(loop, "save_checkpoint", save_then_stop)
        try:
            with pytest.raises(Interrupted):
                yield
        finally:
            monkeypatch.setattr(loop, "save_checkpoint", save)

    return kill


@pytest.fixture()
def fixed_step_times(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, list[float]], None]:
    """``fixed_step_times(module, seconds)``: ``module.time_steps`` (a ``vmae.bench`` module's timer) runs
    the step once and reports the next of ``seconds`` as its time a step, so rates are known numbers."""

    def fix(module: Any, seconds: list[float]) -> None:
        times = iter(seconds)

        def time_once(step, steps, warmup, device) -> float:
            step()
            return next(times)

        monkeypatch.setattr(module, "time_steps", time_once)

    return fix


# --------------------------------------------------------------------------- tiny models

TINY_ENCODER = dict(img_size=16, patch_size=4, num_frames=4, tubelet_size=2, embed_dim=32, depth=2, num_heads=2,
                    mlp_ratio=4.0, qkv_bias=True, init_values=0.0, drop_path_rate=0.0)
TINY_DECODER = dict(decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)


def _split(changes: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``TINY_ENCODER`` with the encoder fields of ``changes`` -> (EncoderConfig, the other changes)."""
    from vmae.models.vit import EncoderConfig

    fields = {f.name for f in dataclasses.fields(EncoderConfig)}
    encoder = EncoderConfig(**{**TINY_ENCODER, **{k: v for k, v in changes.items() if k in fields}})
    return encoder, {k: v for k, v in changes.items() if k not in fields}


@pytest.fixture()
def tiny_vit() -> Callable[..., Any]:
    """``tiny_vit(**changes)``: a VideoViT of 16 px, 4 frames, patch 4, tubelet 2 (2x4x4 = 32 tokens), width
    32, depth 2, 2 heads; ``changes``: EncoderConfig fields or other constructor arguments."""
    from vmae.models.vit import VideoViT

    def build(**changes: Any) -> VideoViT:
        encoder, others = _split(changes)
        return VideoViT(encoder, **others)

    return build


@pytest.fixture()
def tiny_mae() -> Callable[..., Any]:
    """``tiny_mae(**changes)``: a VideoMAE with ``tiny_vit``'s encoder and a decoder of width 16, depth 1."""
    from vmae.models.mae import VideoMAE

    def build(**changes: Any) -> VideoMAE:
        encoder, others = _split(changes)
        return VideoMAE(encoder, **{**TINY_DECODER, **others})

    return build


# --------------------------------------------------------------------------- toy videos


@dataclasses.dataclass(frozen=True)
class ToyVideos:
    """Three 32x32 AVIs of 24, 28 and 32 frames (``v0..v2.avi``, labels 0-2, listed in ``train.csv``):
    a bright left half and a dark right half (a flip shows after any crop), plus motion. ``info``: 3
    classes, dense sampling at stride 2, flips allowed and swapping labels 0 and 1."""

    folder: Path
    frames: int = 4  # frames a clip
    size: int = 32  # clip side
    info: Any = None

    def dataset(self, manifest: Path, train: bool, k: int = 1, info: Any = None, output: str = "float",
                labelled: bool = True, **cfg: Any) -> Any:
        """``TrainingClips`` (``train``, ``k`` clips a visit; ``labelled=False`` as pretraining reads
        them) or ``FixedViews`` (``test_clips x test_crops`` views) of ``manifest`` with
        ``frames x size x size`` clips; ``cfg``: DataConfig fields."""
        from vmae.config import DataConfig
        from vmae.data.dataset import FixedViews, TrainingClips, VideoSource

        data_cfg = DataConfig(**cfg)
        source = VideoSource(manifest, info or self.info, data_cfg, num_frames=self.frames)
        if train:
            return TrainingClips(source, self.size, clips_per_visit=k, output=output, labelled=labelled)
        return FixedViews(source, self.size, data_cfg.test_clips, data_cfg.test_crops, output=output)


def half_bright(num_frames: int, size: int) -> np.ndarray:
    """(F, size, size, 3) uint8: bright left half, dark right half, plus motion."""
    from vmae.bench.loader import moving_frames

    frames = moving_frames(num_frames, size, size, seed=0) // 4
    frames[:, :, : size // 2] += 160
    return frames


@pytest.fixture(scope="session")
def toy_videos(tmp_path_factory: pytest.TempPathFactory) -> ToyVideos:
    """The ``ToyVideos`` (treat the folder as read-only)."""
    from vmae.data.manifest import DatasetInfo, write_manifest
    from vmae.data.writer import write_video

    root = tmp_path_factory.mktemp("toy")
    for i in range(3):
        write_video(root / f"v{i}.avi", half_bright(24 + 4 * i, 32), fps=25)
    write_manifest(root / "train.csv", [(str(root / f"v{i}.avi"), i) for i in range(3)])
    info = DatasetInfo(name="toy", domain="clean", num_classes=3, sampling_mode="dense",
                       frame_stride=2, flip_allowed=True, flip_label_map=[1, 0, 2])
    return ToyVideos(root, info=info)


def write_bad_videos(folder: Path, good: Path) -> dict[str, Path]:
    """A zero-byte file, the first half of the real AVI ``good``, and a text file named .avi."""
    zero, truncated, text = folder / "zero.avi", folder / "truncated.avi", folder / "text.avi"
    zero.write_bytes(b"")
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text.write_text("this is not a video\n")
    return {"zero": zero, "truncated": truncated, "text": text}


@pytest.fixture(scope="session")
def bad_videos() -> Callable[[Path, Path], dict[str, Path]]:
    """``bad_videos(folder, good)``: writes ``write_bad_videos``' three unreadable files into ``folder``."""
    return write_bad_videos
