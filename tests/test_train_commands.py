"""The `vmae pretrain | finetune | linprobe | reconstruct` commands end to end on the tiny dataset."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from vmae.cli import main as vmae
from vmae.config import ModelConfig, PretrainConfig
from vmae.data.loaders import EpochSampler, RunBatchSampler
from vmae.data.transforms import normalize
from vmae.methods.videomae import VideoMAEObjective, mask_indices, videomae_clip_flops, videomae_step
from vmae.models import build_videomae
from vmae.models.masking import make_mask, split_mask
from vmae.train import cli_common
from vmae.train.batches import train_loaders
from vmae.train.checkpoint import load_checkpoint
from vmae.train.distributed import DistEnv, wrap_model
from vmae.train.step import derive_seed

RUN_KEYS = {"config", "seed", "versions", "git_commit", "git_dirty", "device", "host", "wall_s", "clips_per_s"}
EVAL_KEYS = RUN_KEYS | {"top1", "top5", "train_videos", "val_videos", "bad_videos", "val_bad_videos", "init"}


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def videomae_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory, tiny_run_args: list[str]) -> Path:
    out = tmp_path_factory.mktemp("pretrain") / "videomae"
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(out), "--seed", "3", *tiny_run_args]) == 0
    return out


def test_pretrain_videomae_writes_checkpoint_log_and_metrics(videomae_run: Path):
    metrics = _metrics(videomae_run)
    assert RUN_KEYS | {"method", "epochs", "final_loss", "train_videos", "bad_videos"} <= metrics.keys()
    assert metrics["method"] == "videomae" and metrics["epochs"] == 1 and metrics["train_videos"] == 20
    assert metrics["seed"] == 3 and metrics["config"]["model"]["num_frames"] == 8
    assert metrics["bad_videos"] == 0 and 0 < metrics["final_loss"] < 10 and metrics["clips_per_s"] > 0
    pretext = metrics["pretext"]  # measured on the 10 held-out val videos, one clip each
    assert pretext["clips"] == 10 and pretext["loss"] > 0 and 0 < pretext["trivial_loss"] <= 1.0
    assert pretext["skill"] == pytest.approx(1 - pretext["loss"] / pretext["trivial_loss"])
    on_train = metrics["pretext_train"]  # the same measure on its own 20 training videos, fresh masks
    assert on_train["clips"] == 20 and on_train["skill"] == pytest.approx(1 - on_train["loss"] / on_train["trivial_loss"])
    assert on_train["loss"] != pretext["loss"]
    cfg = PretrainConfig(model=ModelConfig(num_frames=8), mask_ratio=metrics["config"]["mask_ratio"])
    assert metrics["train_flops"] == pytest.approx(videomae_clip_flops(cfg) * metrics["clips"])
    log = [json.loads(ln) for ln in (videomae_run / "log.jsonl").read_text().splitlines()]
    assert [(ln["epoch"], ln["step"]) for ln in log] == [(1, 2)]  # 20 videos / batch 10
    ckpt = load_checkpoint(videomae_run / "checkpoint.pt")
    assert ckpt["method"] == "videomae" and ckpt["epoch"] == 1
    assert any(k.startswith("decoder.") for k in ckpt["model"])


@pytest.mark.slow
def test_interrupted_and_resumed_run_with_workers_is_bit_identical(tiny_dataset: Path, tmp_path: Path,
                                                                    killed_after_epoch):
    """Two loader workers that persist across epochs; the resumed run starts them at epoch 2."""
    args = ["--data", str(tiny_dataset), "--epochs", "3", "optim.batch_size=10", "optim.warmup_epochs=0",
            "data.num_workers=2", "model.num_frames=8", "data.repeated_sampling=2"]
    assert vmae(["pretrain", "--out", str(tmp_path / "straight"), *args]) == 0
    with killed_after_epoch(2):
        vmae(["pretrain", "--out", str(tmp_path / "resumed"), *args])
    assert vmae(["pretrain", "--out", str(tmp_path / "resumed"), *args]) == 0
    straight, resumed = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("straight", "resumed"))
    assert straight["step"] == resumed["step"] == 6
    for name, value in straight["model"].items():
        assert torch.equal(resumed["model"][name], value), name


@pytest.mark.parametrize("workers", [0, 2])
def test_train_loaders_cut_one_iteration_into_epochs(tiny_dataset: Path, workers: int):
    """Epochs taken in order continue one DataLoader iteration; an epoch taken again, or first,
    starts a new one there: either way epoch e has the same batches."""
    args = cli_common.argparse.Namespace(data=tiny_dataset, train_manifest=None)
    dataset = cli_common.training_clips(args, PretrainConfig(model=ModelConfig(num_frames=8)), 1, DistEnv())
    make_loader = train_loaders(dataset, 4, workers, DistEnv(), seed=1, epochs=3)
    assert len(make_loader(0)) == 5  # 20 videos / 4
    in_order = [[(labels.tolist(), clips.sum().item()) for clips, labels, _ in make_loader(e)] for e in range(3)]
    assert all(len(epoch) == 5 for epoch in in_order)
    assert in_order[0] != in_order[1]  # reshuffled (and re-augmented: flips swap some labels)
    run = make_loader.__self__
    assert run._next_epoch == 3  # one iteration served all three
    for e in (1, 0, 2):  # out of order: each starts anew
        assert [(labels.tolist(), clips.sum().item()) for clips, labels, _ in make_loader(e)] == in_order[e]


def test_run_batch_sampler_drops_each_epochs_remainder(tiny_dataset: Path):
    dataset = cli_common.training_clips(cli_common.argparse.Namespace(data=tiny_dataset, train_manifest=None),
                                       PretrainConfig(model=ModelConfig(num_frames=8)), 1, DistEnv())
    sampler = EpochSampler(DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=2), seed=2)
    batches = RunBatchSampler(sampler, 6, epochs=3)
    batches.set_epoch(1)
    out = list(batches)
    assert len(batches) == 3 and len(out) == 6 and all(len(b) == 6 for b in out)  # 20 // 6 = 3 a epoch, 2 left out
    assert [{key.epoch for key in b} for b in out] == [{1}] * 3 + [{2}] * 3
    sampler.set_epoch(2)
    assert [k.index for b in out[3:] for k in b] == [k.index for k in sampler][:18]
    assert len({k.index for b in out[:3] for k in b}) == 18  # no video twice in an epoch


def test_rerun_of_a_finished_run_is_a_noop(videomae_run: Path, tiny_dataset: Path, tiny_run_args: list[str], capsys):
    before = {p.name: p.stat().st_mtime_ns for p in videomae_run.iterdir()}
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(videomae_run), "--seed", "3", *tiny_run_args]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in videomae_run.iterdir()} == before
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(videomae_run), "--seed", "3", *tiny_run_args,
                 "--train-manifest", str(tiny_dataset / "val.csv")]) == 2
    assert re.search(r"different config \(train_manifest: '.*train\.csv' saved, '.*val\.csv' now",
                     capsys.readouterr().err)


def test_pretrain_mocov3(tiny_dataset: Path, tmp_path: Path, tiny_run_args: list[str]):
    out = tmp_path / "moco"
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(out), "--method", "mocov3", *tiny_run_args,
                 "moco.hidden_dim=64", "moco.proj_dim=32"]) == 0
    metrics = _metrics(out)
    assert metrics["method"] == "mocov3" and metrics["config"]["method"] == "mocov3"
    assert np.isfinite(metrics["final_loss"]) and metrics["final_loss"] > 0
    assert any(k.startswith("momentum_encoder.") for k in load_checkpoint(out / "checkpoint.pt")["model"])
    # instance discrimination among the 10 held-out videos (2 clips each) against chance 1/10
    pretext = metrics["pretext"]
    assert (pretext["clips"], pretext["chance"]) == (20, 0.1) and pretext["top1"] in {i / 20 for i in range(21)}
    assert pretext["skill"] == pytest.approx((pretext["top1"] - 0.1) / 0.9)


@pytest.mark.parametrize("with_init", [False, True])
def test_finetune_scratch_and_from_pretraining(with_init: bool, videomae_run: Path, tiny_dataset: Path,
                                               tmp_path: Path, tiny_run_args: list[str], capsys):
    out = tmp_path / "ft"
    init = ["--init", str(videomae_run / "checkpoint.pt")] if with_init else []
    assert vmae(["finetune", "--data", str(tiny_dataset), "--out", str(out), *init, *tiny_run_args,
                 "mixup=0.8", "cutmix=1.0"]) == 0
    metrics = _metrics(out)
    assert EVAL_KEYS <= metrics.keys()
    assert metrics["init"] == (str(videomae_run / "checkpoint.pt") if with_init else None)
    assert metrics["train_manifest"] == str(tiny_dataset / "train.csv")
    assert (metrics["train_videos"], metrics["val_videos"], metrics["val_bad_videos"]) == (20, 10, 0)
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 100
    predictions = (out / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "path,label,pred,prob" and len(predictions) == 11
    # top-1 agrees with the predictions file
    rows = [line.split(",") for line in predictions[1:]]
    assert metrics["top1"] == pytest.approx(100 * np.mean([r[1] == r[2] for r in rows]))
    if with_init:
        log = capsys.readouterr().out
        assert "VideoMAE encoder" in log and "loaded 50 tensors" in log  # patch embed 2 + 4 blocks x 12
        assert "kept freshly initialised: ['fc_norm.bias', 'fc_norm.weight', 'head.bias', 'head.weight']" in log


def test_linprobe_random_and_pretrained_encoder(videomae_run: Path, tiny_dataset: Path, tmp_path: Path):
    for name, init in (("random", []), ("mae", ["--init", str(videomae_run / "checkpoint.pt")])):
        out = tmp_path / name
        assert vmae(["linprobe", "--data", str(tiny_dataset), "--out", str(out), *init, "data.num_workers=0",
                     "model.num_frames=8", "data.test_clips=1", "train_clips=1"]) == 0
        metrics = _metrics(out)
        assert EVAL_KEYS <= metrics.keys() and metrics["feature_dim"] == 128
        assert 0 <= metrics["top1"] <= metrics["top5"] <= 100
        features = np.load(out / "features.npz")
        assert features["train_features"].shape == (20, 128) and features["val_features"].shape == (10, 128)


def test_reconstruct_draws_three_rows_a_clip(videomae_run: Path, tiny_dataset: Path, tmp_path: Path):
    png = tmp_path / "recon.png"
    assert vmae(["reconstruct", "--init", str(videomae_run / "checkpoint.pt"), "--data", str(tiny_dataset),
                 "--out", str(png), "--num", "2", "--mask-ratio", "0.75", "--masking", "random"]) == 0
    image = matplotlib.image.imread(png)
    assert image.shape[0] > image.shape[1]  # 6 rows of 4 frames
    assert image.std() > 0.05


def test_config_errors_reach_the_command_line(tiny_dataset: Path, tmp_path: Path, tiny_run_args: list[str], capsys):
    assert vmae(["finetune", "--data", str(tiny_dataset), "--out", str(tmp_path), "optim.lr=1"]) == 2
    assert re.search(r"vmae finetune: error: .*unknown key 'optim\.lr'", capsys.readouterr().err)
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(tmp_path), "--method", "mocov3",
                 "data.repeated_sampling=2"]) == 2
    assert "data.repeated_sampling=2: expected 1 with method=mocov3" in capsys.readouterr().err
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(tmp_path), *tiny_run_args, "optim.batch_size=32"]) == 2
    assert "20 training videos, fewer than one batch" in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


def test_repeated_sampling_puts_all_clips_in_the_batch(tiny_dataset: Path, tmp_path: Path, tiny_run_args: list[str]):
    out = tmp_path / "rs"
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(out), *tiny_run_args, "data.repeated_sampling=2"]) == 0
    log = json.loads((out / "log.jsonl").read_text())
    assert log["step"] == 2
    assert _metrics(out)["lr"] == pytest.approx(1.5e-4 * 20 / 256)  # 10 videos x 2 clips a step
    assert torch.isfinite(torch.tensor(log["loss"]))


# --------------------------------------------------------------------------- the VideoMAE step's mask path


def test_mask_indices_are_split_mask_in_one_buffer():
    mask = make_mask("tube", 3, (2, 4, 4), 0.75, torch.Generator().manual_seed(0))
    visible, masked = mask_indices(mask, torch.device("cpu"))
    expected = split_mask(mask)
    assert torch.equal(visible, expected[0]) and torch.equal(masked, expected[1])
    assert visible.shape == (3, 8) and masked.shape == (3, 24)
    assert visible.untyped_storage().data_ptr() == masked.untyped_storage().data_ptr()  # one copy


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mask_indices_copy_does_not_wait_for_the_gpu():
    mask = make_mask("tube", 128, (8, 14, 14), 0.9, torch.Generator().manual_seed(0))
    device = torch.device("cuda")
    mask_indices(mask, device)  # warm the pinned-memory cache
    torch.cuda.synchronize()
    torch.cuda._sleep(2_000_000_000)  # ~1 s of GPU work queued ahead of the copy
    start = time.perf_counter()
    visible, masked = mask_indices(mask, device)
    queued_s = time.perf_counter() - start
    assert queued_s < 0.2  # a pageable copy would have waited for the sleep
    expected = split_mask(mask)
    assert torch.equal(visible.cpu(), expected[0]) and torch.equal(masked.cpu(), expected[1])


def test_videomae_step_matches_the_mask_forward():
    cfg = PretrainConfig(model=ModelConfig(num_frames=8), mask_ratio=0.75, seed=5)
    torch.manual_seed(0)
    model = build_videomae(cfg.model)
    env = DistEnv()
    net = wrap_model(VideoMAEObjective(model, cfg), env)
    clips = torch.randint(0, 256, (2, 2, 3, 8, 32, 32), dtype=torch.uint8)
    out = videomae_step(net, cfg, env, model.grid)((clips, torch.zeros(2), torch.tensor([0, 3])), 7)
    assert out.clips == 4 and int(out.bad) == 3
    video = normalize(clips.flatten(0, 1), cfg.data.mean, cfg.data.std)
    mask = make_mask("tube", 4, model.grid, 0.75, torch.Generator().manual_seed(derive_seed(5, 7)))
    expected = F.mse_loss(model(video, mask), model.targets(video, split_mask(mask)[1]))
    torch.testing.assert_close(out.loss, expected)


def test_resume_refuses_another_train_manifest(tiny_dataset: Path, tmp_path: Path, killed_after_epoch, capsys):
    """A killed run rerun with another --train-manifest (same config) must not continue."""
    args = ["--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--epochs", "2", "optim.batch_size=10",
            "optim.warmup_epochs=0", "data.num_workers=0", "model.num_frames=8"]
    with killed_after_epoch(1):
        vmae(["pretrain", *args])
    assert vmae(["pretrain", *args, "--train-manifest", str(tiny_dataset / "val.csv")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"resume\.pt was written by a run with other inputs \(train_manifest: '.*train\.csv' saved, "
                     r"'.*val\.csv' now; train_manifest_sha256: '[0-9a-f]{64}' saved, '[0-9a-f]{64}' now\)", err)


def test_input_identity_follows_the_init_file_bytes(tmp_path: Path):
    init = tmp_path / "init.pt"
    init.write_bytes(b"one")
    args = cli_common.argparse.Namespace(data=tmp_path, train_manifest=None, init=init)
    first = cli_common.input_identity(args)
    assert first["data"] == str(tmp_path.resolve()) and first["train_manifest_sha256"] is None
    assert first["init"] == str(init.resolve()) and len(first["init_sha256"]) == 64
    time.sleep(0.01)
    init.write_bytes(b"two")
    assert cli_common.input_identity(args)["init_sha256"] != first["init_sha256"]
    assert cli_common.input_identity(cli_common.argparse.Namespace(data=tmp_path, train_manifest=None, init=None))[
        "init_sha256"] is None
