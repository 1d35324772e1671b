"""The shared training loop on a toy regression model: schedule, resume after SIGKILL, DDP, NaN stop.

Run as a script (``python tests/test_train_loop.py OUT EPOCHS SLEEP AUGMENT``) it trains the toy
model once; the resume and DDP tests start it in subprocesses (plain and under torchrun).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vmae.config import OptimConfig
from vmae.train import loop, monitor
from vmae.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vmae.train.distributed import (
    DistEnv,
    build_sampler,
    init_distributed,
    local_batch_size,
    shutdown,
    wrap_model,
)
from vmae.train.loop import NonFiniteLossError, train
from vmae.train.optim import lr_at, param_groups, scaled_lr
from vmae.train.run_files import config_differences
from vmae.train.step import StepOutput

SCRIPT = Path(__file__).resolve()
TOY_CFG = OptimConfig(epochs=3, warmup_epochs=1, batch_size=8, base_lr=5.0, min_lr=1e-4, clip_grad=1.0)


class ToyData(Dataset):
    """32 points x: (4,), y = x . w; ``augment`` adds noise from the global torch RNG."""

    def __init__(self, augment: bool):
        gen = torch.Generator().manual_seed(123)
        self.x = torch.randn(32, 4, generator=gen)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        self.augment = augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i] + (0.1 * torch.randn(4) if self.augment else 0.0)
        return x, self.y[i]


def run_toy(out: Path, cfg: OptimConfig = TOY_CFG, augment: bool = True, sleep: float = 0.0,
            nan_from_step: int | None = None, bad: int | torch.Tensor = 0, inputs: dict | None = None,
            on_epoch_end=None):
    """Train the toy model with the real loop (single process or under torchrun); every step reports
    ``bad`` skipped videos; ``inputs``: the run's input identity (compared on resume);
    ``on_epoch_end``: the loop's hook for extra log fields."""
    env = init_distributed("cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.Dropout(0.2 if augment else 0.0), nn.Linear(16, 1))
    net = wrap_model(model, env)
    data = ToyData(augment)
    sampler = build_sampler(data, env, shuffle=True, seed=7)

    def make_loader(epoch: int) -> DataLoader:
        sampler.set_epoch(epoch)
        return DataLoader(data, batch_size=local_batch_size(cfg.batch_size, env), sampler=sampler, drop_last=True)

    def step(batch, step_index: int, micro=None) -> StepOutput:
        time.sleep(sleep)
        x, y = batch
        loss = nn.functional.mse_loss(net(x).squeeze(1), y)
        if nan_from_step is not None and step_index >= nan_from_step:
            loss = loss * math.nan
        return StepOutput(loss, clips=len(x), bad=bad)

    result = train(model, step, param_groups(model, 0.05), make_loader, cfg, env, out, seed=7,
                   clips_per_step=cfg.batch_size, run_config={"optim": {"epochs": cfg.epochs}}, method="toy",
                   inputs=inputs, on_epoch_end=on_epoch_end)
    shutdown(env)
    return model, result


def _script(out: Path, augment: bool = True, sleep: float = 0.0) -> list[str]:
    return [str(SCRIPT), str(out), str(int(augment)), str(sleep)]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


# --------------------------------------------------------------------------- optimiser pieces


def test_scaled_lr_and_schedule_endpoints():
    assert scaled_lr(1.5e-4, 512) == pytest.approx(3e-4)
    peak, low = 1.0, 0.01
    assert lr_at(0, 100, 10, peak, low) == 0.0
    assert lr_at(5, 100, 10, peak, low) == pytest.approx(0.5)
    assert lr_at(10, 100, 10, peak, low) == pytest.approx(peak)
    assert lr_at(55, 100, 10, peak, low) == pytest.approx((peak + low) / 2)  # half-way down the cosine
    assert lr_at(100, 100, 10, peak, low) == pytest.approx(low)
    assert lr_at(0, 100, 0, peak, low) == pytest.approx(peak)  # no warm-up


def test_param_groups_split_decay_and_scale_layers(tiny_vit):
    from vmae.models.vit import layer_id

    model = tiny_vit(patch_size=8, embed_dim=16, num_classes=3)
    groups = param_groups(model, 0.05, layer_decay=0.5, layer_of=lambda n: layer_id(n, 2), num_layers=3)
    by_name = {g["name"]: g for g in groups}
    # layer 0 = patch embedding, 1..2 = blocks, 3 = fc_norm + head
    assert by_name["layer0_decay"]["lr_scale"] == pytest.approx(0.125)
    assert by_name["layer1_decay"]["lr_scale"] == pytest.approx(0.25)
    assert by_name["layer3_decay"]["lr_scale"] == pytest.approx(1.0)
    assert by_name["layer3_no_decay"]["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert {"head.bias", "fc_norm.weight", "blocks.0.norm1.weight", "patch_embed.proj.bias"} <= no_decay
    assert "head.weight" not in no_decay and "blocks.1.attn.qkv.weight" not in no_decay
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_param_groups_honour_model_no_weight_decay_list():
    class WithToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.mask_token = nn.Parameter(torch.zeros(1, 1, 4))
            self.proj = nn.Linear(4, 4)

        def no_weight_decay(self):
            return {"mask_token"}

    groups = param_groups(WithToken(), 0.1)
    decayed = [p.shape for g in groups if g["weight_decay"] > 0 for p in g["params"]]
    assert decayed == [torch.Size([4, 4])]


def test_config_differences_name_changed_keys_but_ignore_device():
    saved = {"seed": 0, "device": "cpu", "optim": {"epochs": 3, "base_lr": 1.0}}
    now = {"seed": 0, "device": "cuda", "optim": {"epochs": 4, "base_lr": 1.0}}
    assert config_differences(saved, now) == ["optim.epochs: 3 saved, 4 now"]


# --------------------------------------------------------------------------- loop behaviour


def test_loop_learns_logs_and_rerun_is_noop(tmp_path):
    model, result = run_toy(tmp_path, augment=False)
    lines = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines] == [1, 2, 3]
    assert lines[-1]["loss"] < 0.5 * lines[0]["loss"]
    assert lines[-1]["step"] == result.steps == 12
    assert result.final_loss == pytest.approx(lines[-1]["loss"])
    assert result.lr == pytest.approx(5.0 * 8 / 256)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 3 and ckpt["step"] == 12 and ckpt["method"] == "toy"
    mtime = (tmp_path / "checkpoint.pt").stat().st_mtime_ns
    again_model, again = run_toy(tmp_path, augment=False)
    assert (tmp_path / "checkpoint.pt").stat().st_mtime_ns == mtime
    assert again.final_loss == result.final_loss and again.steps == 12
    assert torch.equal(again_model[0].weight, model[0].weight)


def test_resume_refuses_a_changed_config(tmp_path):
    run_toy(tmp_path, OptimConfig(epochs=1, warmup_epochs=0, batch_size=8, base_lr=0.05))
    with pytest.raises(ValueError, match=r"optim\.epochs: 1 saved, 2 now"):
        run_toy(tmp_path, OptimConfig(epochs=2, warmup_epochs=0, batch_size=8, base_lr=0.05))


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 5 .*resume\.pt \(after epoch 1\) is kept"):
        run_toy(tmp_path, nan_from_step=5)  # 4 steps an epoch: step 5 is in epoch 2
    assert not (tmp_path / "checkpoint.pt").exists()  # only a finished run has one
    ckpt = load_checkpoint(tmp_path / "resume.pt")
    assert ckpt["epoch"] == 1 and ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    reference, _ = run_toy(tmp_path / "straight")
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, *_script(out, sleep=0.1)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out / "resume.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "toy run ended before its first checkpoint"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "checkpoint.pt").exists()  # really interrupted: the final checkpoint is not there
    assert load_checkpoint(out / "resume.pt")["epoch"] < TOY_CFG.epochs
    _run([sys.executable, *_script(out)])
    resumed = load_checkpoint(out / "checkpoint.pt")["model"]
    for name, value in reference.state_dict().items():
        assert torch.equal(resumed[name], value), name
    assert [json.loads(ln)["epoch"] for ln in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert not (out / "resume.pt").exists()  # renamed to checkpoint.pt at the end


def test_resume_state_survives_deleted_outputs_but_not_a_changed_config(tmp_path):
    """What a Snakemake rerun after a kill sees: the declared outputs (checkpoint.pt) deleted,
    resume.pt (not an output) still there."""
    with pytest.raises(NonFiniteLossError):
        run_toy(tmp_path, nan_from_step=5)  # stops after epoch 1, as a kill would
    changed = OptimConfig(**{**TOY_CFG.__dict__, "epochs": 4})
    with pytest.raises(ValueError, match=r"resume\.pt was written by a run with a different config "
                                         r"\(optim\.epochs: 3 saved, 4 now\)"):
        run_toy(tmp_path, changed)
    model, result = run_toy(tmp_path)  # the same config resumes after epoch 1
    assert [json.loads(ln)["epoch"] for ln in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert not (tmp_path / "resume.pt").exists() and load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 3
    (tmp_path / "checkpoint.pt").unlink()  # a finished job rerun by Snakemake (e.g. its data changed)
    again, again_result = run_toy(tmp_path)  # starts afresh, and its log holds this run only
    assert [json.loads(ln)["epoch"] for ln in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert again_result.steps == result.steps == 12


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(tmp_path):
    _run([sys.executable, *_script(tmp_path / "one", augment=False)])
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
          *_script(tmp_path / "two", augment=False)])
    one = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    two = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert one["step"] == two["step"] == 12  # same global batch -> same number of steps
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, atol=1e-5, rtol=1e-5)
    log_one, log_two = ((tmp_path / d / "log.jsonl").read_text().splitlines() for d in ("one", "two"))
    assert json.loads(log_two[-1])["loss"] == pytest.approx(json.loads(log_one[-1])["loss"], rel=1e-4)


@pytest.mark.parametrize("bad", [1, torch.tensor(1)])
def test_skipped_videos_are_counted_from_ints_and_tensors(tmp_path, bad):
    _, result = run_toy(tmp_path, augment=False, bad=bad)
    lines = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [ln["bad_videos"] for ln in lines] == [4, 4, 4]  # 4 steps an epoch
    assert result.bad_videos == 12


def test_warmup_longer_than_the_run_is_warned(tmp_path, capsys):
    run_toy(tmp_path, OptimConfig(epochs=1, warmup_epochs=2, batch_size=8, base_lr=5.0), augment=False)
    assert "warning: optim.warmup_epochs=2 > optim.epochs=1" in capsys.readouterr().out
    last = json.loads((tmp_path / "log.jsonl").read_text())
    assert last["lr"] == pytest.approx(5.0 * 8 / 256 * 3 / 8)  # step 3 of an 8-step warm-up


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    np.random.seed(3)
    random.seed(4)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})
    first = (np.random.rand(3), np.random.normal(), random.random(), torch.rand(2))
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])  # load_checkpoint uses weights_only=True
    again = (np.random.rand(3), np.random.normal(), random.random(), torch.rand(2))
    assert np.array_equal(first[0], again[0]) and first[1:3] == again[1:3] and torch.equal(first[3], again[3])


def test_local_batch_must_divide():
    with pytest.raises(ValueError, match="batch_size=9 .* world size 2"):
        local_batch_size(9, DistEnv(rank=0, world_size=2))


if __name__ == "__main__":
    torch.set_num_threads(1)
    out_dir, augment_flag, sleep_s = Path(sys.argv[1]), bool(int(sys.argv[2])), float(sys.argv[3])
    run_toy(out_dir, augment=augment_flag, sleep=sleep_s)


def test_nonfinite_loss_stops_within_a_few_steps_not_at_the_epoch_end(tmp_path):
    """An epoch of 40 steps whose loss is nan from step 2: the loop reads the device-side flag every
    FINITE_CHECK_EVERY micro-steps, so it stops by step 8, not after step 39."""
    model = nn.Linear(4, 1)
    calls = []

    def step(batch, step_index: int, micro=None) -> StepOutput:
        calls.append(step_index)
        loss = model(batch).pow(2).mean()
        return StepOutput(loss * math.nan if step_index >= 2 else loss, clips=len(batch))

    cfg = OptimConfig(epochs=2, warmup_epochs=0, batch_size=2, base_lr=0.1)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch 1, step 2 \(global\); training stopped, "
                                                 r"no checkpoint was written"):
        train(model, step, param_groups(model, 0.0), lambda epoch: [torch.randn(2, 4) for _ in range(40)], cfg,
              DistEnv(), tmp_path, seed=0, clips_per_step=2, run_config={}, method="toy")
    assert len(calls) == loop.FINITE_CHECK_EVERY == 8
    assert not any(tmp_path.iterdir())


def test_a_partial_last_log_line_does_not_block_resume(tmp_path):
    with pytest.raises(NonFiniteLossError):
        run_toy(tmp_path, nan_from_step=5)  # stops after epoch 1
    with (tmp_path / "log.jsonl").open("a") as log:
        log.write('{"epoch": 2, "step": 8, "lo')  # a kill in the middle of the append
    run_toy(tmp_path)
    assert [json.loads(ln)["epoch"] for ln in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_a_kill_right_after_the_checkpoint_loses_no_log_line(tmp_path, killed_after_epoch):
    with killed_after_epoch(2):
        run_toy(tmp_path)
    run_toy(tmp_path)
    assert [json.loads(ln)["epoch"] for ln in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_resume_refuses_other_inputs(tmp_path):
    inputs = {"data": "/d", "train_manifest": "/d/train.csv", "init": "/p/checkpoint.pt", "init_sha256": "ab"}
    with pytest.raises(NonFiniteLossError):
        run_toy(tmp_path, nan_from_step=5, inputs=inputs)  # stops after epoch 1, as a kill would
    with pytest.raises(ValueError, match=r"resume\.pt was written by a run with other inputs \(init_sha256: 'ab' "
                                         r"saved, 'cd' now\); use another --out"):
        run_toy(tmp_path, inputs={**inputs, "init_sha256": "cd"})
    with pytest.raises(ValueError, match=r"other inputs \(data: '/d' saved, '/e' now\)"):
        run_toy(tmp_path, inputs={**inputs, "data": "/e"})
    run_toy(tmp_path, inputs=inputs)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["inputs"] == inputs


# --------------------------------------------------------------------------- watching a run

EPOCH_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d epoch (\d+)/3 step (\d+)/12 loss \S+ lr \d\.\d\de[-+]\d\d "
                        r"clips/s \d+\.\d elapsed \d+:\d\d:\d\d eta (\d+:\d\d:\d\d)(.*)$")


def event_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the event files in ``folder`` -> [(step, value)], as TensorBoard reads them."""
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard is not installed (pip install -e '.[tensorboard]'): no event files to read")
    events = accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_epoch_line_reads_as_the_issue_writes_it():
    record = {"epoch": 12, "step": 36, "loss": 0.42131, "lr": 1.4213e-3, "clips_per_s": 95.06, "wall_s": 3.4,
              "bad_videos": 0, "val_top1": 45.21875, "val_top5": 90}
    now = datetime.datetime(2026, 12, 2, 4, 10, 11)
    assert monitor.epoch_line(record, 117, 351, 41.4, 365.2, now) == (
        "2026-12-02 04:10:11 epoch 12/117 step 36/351 loss 0.4213 lr 1.42e-03 clips/s 95.1 elapsed 0:00:41 "
        "eta 0:06:05 val_top1 45.22 val_top5 90")
    assert monitor.epoch_line({**record, "bad_videos": 3}, 117, 351, 41.4, 90061, now).endswith(
        "eta 1 day, 1:01:01 val_top1 45.22 val_top5 90 bad_videos 3")


def test_loop_prints_one_readable_line_an_epoch_and_no_json(tmp_path, capsys):
    run_toy(tmp_path, augment=False, on_epoch_end=lambda epoch: {"val_top1": 10.0 * epoch})
    out = capsys.readouterr().out.splitlines()
    lines = [m for m in map(EPOCH_LINE.match, out) if m]
    assert [(m[1], m[2], m[4]) for m in lines] == [("1", "4", " val_top1 10"), ("2", "8", " val_top1 20"),
                                                   ("3", "12", " val_top1 30")]
    assert lines[-1][3] == "0:00:00"  # nothing left after the last epoch
    assert not any(line.startswith("{") for line in out)  # the JSON records are in log.jsonl only
    assert [json.loads(ln)["val_top1"] for ln in (tmp_path / "log.jsonl").read_text().splitlines()] == [10, 20, 30]


def test_plain_progress_lines_within_an_epoch_where_no_bar_shows(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(monitor, "PROGRESS_EVERY_S", 0.0)  # a line after every step
    run_toy(tmp_path, OptimConfig(epochs=1, warmup_epochs=0, batch_size=8, base_lr=0.05), augment=False)
    out = capsys.readouterr().out  # stderr is no terminal here: tqdm shows no bar
    steps = re.findall(r"^  epoch 1/1: step (\d)/4 \((\d+)%\), \d+\.\d clips/s$", out, re.MULTILINE)
    assert steps == [("1", "25"), ("2", "50"), ("3", "75"), ("4", "100")]


def test_no_progress_lines_where_a_bar_shows_or_before_the_interval(capsys, monkeypatch):
    monkeypatch.setattr(monitor, "PROGRESS_EVERY_S", 0.0)
    monitor.EpochProgress("epoch 1/1", 4, enabled=False).update(1, 8)  # tqdm draws a bar
    monkeypatch.setattr(monitor, "PROGRESS_EVERY_S", 3600.0)
    monitor.EpochProgress("epoch 1/1", 4, enabled=True).update(1, 8)  # not 30 s yet
    assert capsys.readouterr().out == ""


def test_event_files_hold_the_epoch_losses(tmp_path):
    run_toy(tmp_path, augment=False, on_epoch_end=lambda epoch: {"val_top1": 10.0 * epoch, "note": "text"})
    scalars = event_scalars(tmp_path / "tb")
    assert set(scalars) == {"loss", "lr", "clips_per_s", "val_top1"}
    log = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [step for step, _ in scalars["loss"]] == [1, 2, 3]
    assert [value for _, value in scalars["loss"]] == pytest.approx([ln["loss"] for ln in log], rel=1e-6)
    assert scalars["val_top1"] == [(1, 10.0), (2, 20.0), (3, 30.0)]


def test_event_files_of_a_resumed_run_hold_each_epoch_once(tmp_path, monkeypatch):
    """A kill after epoch 2's points but before its checkpoint: the resume (after epoch 1) hides the
    old epoch 2 and writes it again; a fresh start deletes the old event files."""
    save = loop.save_checkpoint

    def killed_before_epoch_2_is_saved(path, state):
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        save(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", killed_before_epoch_2_is_saved)
    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path)
    monkeypatch.setattr(loop, "save_checkpoint", save)
    run_toy(tmp_path)
    log = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    scalars = event_scalars(tmp_path / "tb")
    assert [(step, pytest.approx(value, rel=1e-6)) for step, value in scalars["loss"]] == [
        (ln["epoch"], ln["loss"]) for ln in log]
    assert len(list((tmp_path / "tb").iterdir())) == 2  # the killed run's file and the resumed run's
    (tmp_path / "checkpoint.pt").unlink()
    run_toy(tmp_path)  # a fresh start
    assert len(list((tmp_path / "tb").iterdir())) == 1 and len(event_scalars(tmp_path / "tb")["loss"]) == 3


def test_training_without_tensorboard_says_event_files_are_off(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    run_toy(tmp_path, augment=False)
    out = capsys.readouterr().out
    assert out.count("TensorBoard event files are off: tensorboard is not installed "
                     "(pip install -e '.[tensorboard]' turns them on)") == 1
    assert not (tmp_path / "tb").exists() and len((tmp_path / "log.jsonl").read_text().splitlines()) == 3
