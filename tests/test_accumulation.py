"""Gradient accumulation (``optim.micro_batch_size``): k micro-batches of b videos make the same
optimiser step as one batch of k*b videos, through the real training loop, in float64.

VideoMAE pretraining (masks drawn per optimiser step, rows sliced per micro-step) and fine-tuning
without mixup (label-smoothed cross-entropy, layer-wise lr decay), one process and 2 gloo processes
(DDP, one all-reduce an optimiser step); a run killed inside an accumulation cycle resumes to the
weights of an uninterrupted run; the loader's micro-batches are its batches cut in k; the config's
checks. Run as a script (``python tests/test_accumulation.py OUT``, under torchrun) it writes the
DDP runs' weights and all-reduce counts for ``test_two_gloo_processes_accumulate_like_one_batch``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from vmae.cli import main as vmae
from vmae.config import (
    ConfigError,
    FinetuneConfig,
    ModelConfig,
    OptimConfig,
    PretrainConfig,
    build_config,
    to_dict,
)
from vmae.methods.mocov3 import build_moco, moco_step
from vmae.methods.videomae import VideoMAEObjective, videomae_step
from vmae.models import build_encoder, build_videomae
from vmae.models.moco import cosine_momentum
from vmae.models.vit import layer_id
from vmae.train import cli_common
from vmae.train.batches import train_loaders
from vmae.train.checkpoint import load_checkpoint
from vmae.train.distributed import (
    DistEnv,
    accumulation_steps,
    init_distributed,
    micro_batch_size,
    shutdown,
    wrap_model,
)
from vmae.train.finetune import classification_step
from vmae.train.loop import train
from vmae.train.optim import param_groups
from vmae.train.run_files import RESUME_NAME, config_differences
from vmae.train.step import Micro

SCRIPT = Path(__file__).resolve()
MODEL = ModelConfig(num_frames=8)  # vit_micro, 32 px, patch 4, tubelet 4: 2 x 8 x 8 = 128 tokens
MICRO, K, STEPS = 2, 3, 2  # micro-batch (videos a process), micro-steps a step, steps an epoch
CLIPS_PER_VISIT = 2  # repeated sampling: the step flattens (B, 2, C, T, H, W)
NUM_CLASSES = 5
TOLERANCE = 1e-6  # float64
# Relative, of a gradient under bf16 autocast. Calibrated on the CPU's bf16 autocast with CUDA_K8's
# runs: accumulated vs float64 0.013 (VideoMAE) and 0.005 (fine-tuning); the CPU's whole batch was
# 0.15 off only because CPU autocast runs LayerNorm in bf16 (its weight and bias gradients, sums
# over 16 clips' tokens, 70-84% off), where CUDA autocast runs it in float32.
BF16_TOLERANCE = 0.05


@dataclass(frozen=True)
class Setup:
    """How a test run trains: ``k`` micro-batches of ``micro`` videos a step (a process), ``steps``
    optimiser steps an epoch, parameters and clips in ``dtype`` on ``device`` (the loop adds bf16
    autocast on CUDA), the model ``torch.compile``-d where ``compile`` (CUDA only, as in training)."""

    micro: int = MICRO
    k: int = K
    steps: int = STEPS
    dtype: torch.dtype = torch.float64
    device: str = "cpu"
    compile: bool = False
    clip_grad: float = 0.02


FLOAT64 = Setup()
# The GPU check (scripts/bench_gpu.sh): the paper's k = 8 on one GPU, compiled, bf16 autocast; one
# step, so every run's gradient is taken at the same initial weights; no clipping, which would hide
# a gradient k times too large.
CUDA_K8 = Setup(k=8, steps=1, dtype=torch.float32, device="cuda", compile=True, clip_grad=0.0)


class Killed(Exception):
    """Stands for a SIGKILL: the process's memory is lost, its files stay."""


def epoch_batches(epoch: int, rank: int, micro: int, setup: Setup = FLOAT64
                  ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch of this process: ``steps * micro * k`` videos of ``setup`` (normalised clips in its
    dtype, labels) in batches of ``micro``; a function of (epoch, rank) only."""
    gen = torch.Generator().manual_seed(1000 * epoch + rank)
    videos = setup.steps * setup.micro * setup.k
    clips = torch.randn(videos, CLIPS_PER_VISIT, 3, MODEL.num_frames, MODEL.img_size, MODEL.img_size,
                        generator=gen, dtype=torch.float64).to(setup.dtype)
    labels = torch.randint(0, NUM_CLASSES, (videos,), generator=gen)
    return [(clips[i:i + micro], labels[i:i + micro], torch.zeros(micro, dtype=torch.long))
            for i in range(0, videos, micro)]


def run(method: str, micro_batch: int, out: Path, env: DistEnv = DistEnv(), epochs: int = 1,
        kill_at: tuple[int, int] | None = None, setup: Setup = FLOAT64) -> tuple[nn.Module, list[int]]:
    """Train a VideoMAE (``method="videomae"``) or fine-tune a classifier (``"finetune"``, no mixup)
    with the real loop: global batch ``micro * k * world size`` videos of ``setup`` (default float64
    on the CPU), micro-batches of ``micro_batch`` (0 = the whole per-process batch at once).
    ``kill_at=(step, micro index)`` raises ``Killed`` there. Returns the model (its ``.grad`` = the
    last step's gradient) and the sizes of the buckets DDP all-reduced."""
    optim_cfg = OptimConfig(epochs=epochs, warmup_epochs=0.5, batch_size=setup.micro * setup.k * env.world_size,
                            micro_batch_size=micro_batch, base_lr=0.5, min_lr=1e-3, clip_grad=setup.clip_grad)
    torch.manual_seed(0)
    if method == "videomae":
        cfg = PretrainConfig(model=MODEL, mask_ratio=0.75, seed=5, optim=optim_cfg)
        model = build_videomae(cfg.model).to(setup.dtype)
        net = wrap_model(VideoMAEObjective(model, cfg), env, setup.compile)
        step = videomae_step(net, cfg, env, model.grid)
        groups = param_groups(model, 0.05)
    else:
        optim_cfg.clip_grad, optim_cfg.layer_decay = 0.0, 0.75
        cfg = FinetuneConfig(model=MODEL, seed=5, optim=optim_cfg, label_smoothing=0.1)
        model = build_encoder(cfg.model, num_classes=NUM_CLASSES).to(setup.dtype)
        net = wrap_model(model, env, setup.compile)
        step = classification_step(net, env, cfg.data, None, cfg.label_smoothing)
        groups = param_groups(model, 0.05, 0.75, partial(layer_id, depth=model.depth), model.depth + 1)
    cfg.data.repeated_sampling = CLIPS_PER_VISIT
    reduced: list[int] = []
    if env.distributed:
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import (
            allreduce_hook,
        )

        def counting_hook(state, bucket):
            reduced.append(bucket.buffer().numel())
            return allreduce_hook(state, bucket)

        net.register_comm_hook(None, counting_hook)

    def killable(batch, step_index: int, micro: Micro = Micro()):
        if kill_at == (step_index, micro.index):
            raise Killed
        return step(batch, step_index, micro)

    train(model, killable, groups, lambda epoch: epoch_batches(epoch, env.rank, micro_batch or setup.micro * setup.k,
                                                             setup), cfg.optim,
          env, out, seed=cfg.seed, clips_per_step=optim_cfg.batch_size * CLIPS_PER_VISIT, run_config=to_dict(cfg),
          method=method, net=net)
    return model, reduced


def max_differences(a: nn.Module, b: nn.Module) -> tuple[float, float]:
    """Largest absolute differences between two models' parameters and between their gradients."""
    params = max((pa - pb).abs().max().item() for pa, pb in zip(a.parameters(), b.parameters()))
    grads = max((pa.grad - pb.grad).abs().max().item() for pa, pb in zip(a.parameters(), b.parameters())
                if pa.grad is not None)
    return params, grads


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- one process


@pytest.mark.parametrize("method", ["videomae", "finetune"])
def test_k_micro_batches_make_the_step_of_one_batch(tmp_path, method):
    whole, _ = run(method, 0, tmp_path / "whole")
    accumulated, _ = run(method, MICRO, tmp_path / "accumulated")
    params, grads = max_differences(whole, accumulated)
    print(f"{method}: max |difference| parameters {params:.2e}, gradients {grads:.2e}")
    assert params < TOLERANCE and grads < TOLERANCE, (params, grads)  # measured: 2e-15 / 2e-18 (videomae)
    torch.manual_seed(0)
    initial = (build_videomae(MODEL) if method == "videomae" else build_encoder(MODEL, NUM_CLASSES)).double()
    moved = max((p - q).abs().max().item() for p, q in zip(whole.parameters(), initial.parameters()))
    assert moved > 1e-3  # the two steps really changed the weights
    # the same optimiser steps, lr, clips and loss are logged and checkpointed
    (one,), (two,) = log(tmp_path / "whole"), log(tmp_path / "accumulated")
    assert one["step"] == two["step"] == STEPS and one["lr"] == two["lr"]
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-6)  # the loop sums losses in float32
    totals = [load_checkpoint(tmp_path / d / "checkpoint.pt")["totals"] for d in ("whole", "accumulated")]
    assert totals[0]["clips"] == totals[1]["clips"] == STEPS * MICRO * K * CLIPS_PER_VISIT


def relative_gradient_difference(a: nn.Module, b: nn.Module) -> float:
    """|grad a - grad b| / |grad b| over all parameters (float64 on the CPU)."""
    def flat(m: nn.Module) -> torch.Tensor:
        return torch.cat([p.grad.detach().double().cpu().flatten() for p in m.parameters() if p.grad is not None])

    return ((flat(a) - flat(b)).norm() / flat(b).norm()).item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: run on the GPU machine by scripts/bench_gpu.sh")
@pytest.mark.parametrize("method", ["videomae", "finetune"])
def test_8_micro_batches_on_cuda_compiled_make_the_step_of_one_batch(tmp_path, method):
    """The paper's one-GPU case: 8 micro-steps under torch.compile and bf16 autocast give the
    gradient of the 16 videos at once, and both that of float64 on the CPU, within bf16's rounding
    (a micro-loss not scaled by 1/k would be 8x off, a micro-batch dropped 1/8 off)."""
    cuda = DistEnv(device=torch.device("cuda"))
    torch._dynamo.reset()
    whole, _ = run(method, 0, tmp_path / "whole", cuda, setup=CUDA_K8)
    torch._dynamo.reset()
    accumulated, _ = run(method, CUDA_K8.micro, tmp_path / "accumulated", cuda, setup=CUDA_K8)
    reference, _ = run(method, 0, tmp_path / "reference", setup=replace(CUDA_K8, dtype=torch.float64, device="cpu",
                                                                        compile=False))
    differences = {"accumulated vs whole": relative_gradient_difference(accumulated, whole),
                   "whole vs float64": relative_gradient_difference(whole, reference),
                   "accumulated vs float64": relative_gradient_difference(accumulated, reference)}
    print(f"{method}: relative gradient differences {differences}")
    assert max(differences.values()) < BF16_TOLERANCE, differences
    (one,), (two,), (ref,) = (log(tmp_path / d) for d in ("whole", "accumulated", "reference"))
    assert one["step"] == two["step"] == 1 and one["lr"] == two["lr"] == ref["lr"]
    assert two["loss"] == pytest.approx(one["loss"], rel=BF16_TOLERANCE)
    assert one["loss"] == pytest.approx(ref["loss"], rel=BF16_TOLERANCE)


@pytest.mark.slow
def test_a_run_killed_inside_an_accumulation_cycle_resumes_to_the_same_weights(tmp_path):
    straight, _ = run("videomae", MICRO, tmp_path / "straight", epochs=3)
    out = tmp_path / "killed"
    with pytest.raises(Killed):  # epoch 2 (steps 2, 3): killed at the second micro-step of step 3
        run("videomae", MICRO, out, epochs=3, kill_at=(3, 1))
    assert load_checkpoint(out / RESUME_NAME)["step"] == STEPS  # the state after epoch 1
    resumed, _ = run("videomae", MICRO, out, epochs=3)
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), name
    assert [(ln["epoch"], ln["step"]) for ln in log(out)] == [(1, 2), (2, 4), (3, 6)]
    assert [ln["loss"] for ln in log(out)] == [ln["loss"] for ln in log(tmp_path / "straight")]


# --------------------------------------------------------------------------- two gloo processes


@pytest.mark.slow
def test_two_gloo_processes_accumulate_like_one_batch(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29531",
               str(SCRIPT), str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    for method in ("videomae", "finetune"):
        whole = load_checkpoint(tmp_path / method / "whole" / "checkpoint.pt")["model"]
        accumulated = load_checkpoint(tmp_path / method / "accumulated" / "checkpoint.pt")["model"]
        diff = max((whole[k].double() - accumulated[k].double()).abs().max().item() for k in whole)
        assert diff < TOLERANCE, (method, diff)
        assert result[method]["grad_diff"] < TOLERANCE, result[method]
        # one all-reduce of every gradient an optimiser step, none on the other micro-steps
        sizes = result[method]["reduced"]
        assert sum(sizes["whole"]) == sum(sizes["accumulated"]) == STEPS * result[method]["params"]


def ddp_main(out: Path) -> None:
    """Both runs of both methods in 2 gloo processes; rank 0 writes ``result.json``."""
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    result = {}
    for method in ("videomae", "finetune"):
        whole, reduced_whole = run(method, 0, out / method / "whole", env)
        accumulated, reduced_accumulated = run(method, MICRO, out / method / "accumulated", env)
        result[method] = {
            "grad_diff": max_differences(whole, accumulated)[1],
            "reduced": {"whole": reduced_whole, "accumulated": reduced_accumulated},
            "params": sum(p.numel() for p in whole.parameters() if p.requires_grad),
        }
    if env.is_main:
        (out / "result.json").write_text(json.dumps(result))
    shutdown(env)


# --------------------------------------------------------------------------- MoCo v3 and the commands


def test_moco_updates_its_momentum_encoder_once_an_optimiser_step():
    cfg = PretrainConfig(model=MODEL, method="mocov3")
    cfg.moco.hidden_dim, cfg.moco.proj_dim, cfg.moco.momentum = 64, 32, 0.9
    torch.manual_seed(0)
    model = build_moco(cfg)
    with torch.no_grad():  # base and momentum encoders apart, so an update shows
        for p in model._base_params():
            p.add_(0.1)
    step = moco_step(model, DistEnv(), cfg, total_steps=10)
    batch = (torch.randn(4, 2, 3, MODEL.num_frames, MODEL.img_size, MODEL.img_size), torch.zeros(4), torch.zeros(4))
    before = [p.clone() for p in model._momentum_params()]
    assert step(batch, 3, Micro(1, 2)).clips == 8  # not the step's first micro-step: no update
    assert all(torch.equal(a, b) for a, b in zip(before, model._momentum_params()))
    step(batch, 3, Micro(0, 2))  # the first: one update at the step's momentum
    m = cosine_momentum(3, 10, 0.9)
    for old, new, base in zip(before, model._momentum_params(), model._base_params()):
        torch.testing.assert_close(new, m * old + (1 - m) * base)


def test_pretrain_commands_accumulate(tiny_dataset: Path, tmp_path: Path, capsys):
    """`vmae pretrain` with micro-batches of 5 (2 a step of 10): VideoMAE ends where the run without
    accumulation ends (float32, 2 steps); MoCo v3 counts optimiser steps."""
    common = ["--data", str(tiny_dataset), "--epochs", "1", "optim.batch_size=10", "optim.warmup_epochs=0",
              "data.num_workers=0", "model.num_frames=8", "--seed", "3"]
    assert vmae(["pretrain", "--out", str(tmp_path / "whole"), *common]) == 0
    assert vmae(["pretrain", "--out", str(tmp_path / "micro"), *common, "optim.micro_batch_size=5"]) == 0
    assert vmae(["pretrain", "--out", str(tmp_path / "moco"), "--method", "mocov3", *common,
                 "optim.micro_batch_size=5", "moco.hidden_dim=64", "moco.proj_dim=32"]) == 0
    out = capsys.readouterr().out
    assert out.count("gradient accumulation: 2 micro-steps of optim.micro_batch_size=5 videos x 1 process(es) "
                     "= optim.batch_size=10 a step") == 2
    whole, micro = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("whole", "micro"))
    diff = max((whole["model"][k] - micro["model"][k]).abs().max().item() for k in whole["model"])
    assert diff < 1e-5, diff  # float32; measured 1.5e-8
    assert whole["step"] == micro["step"] == 2 and whole["totals"]["clips"] == micro["totals"]["clips"] == 20
    moco = log(tmp_path / "moco")
    assert [(ln["epoch"], ln["step"]) for ln in moco] == [(1, 2)] and moco[0]["loss"] > 0
    assert json.loads((tmp_path / "micro" / "metrics.json").read_text())["config"]["optim"]["micro_batch_size"] == 5


# --------------------------------------------------------------------------- loader and config


def test_the_loader_yields_each_batch_cut_in_micro_batches(tiny_dataset: Path):
    args = cli_common.argparse.Namespace(data=tiny_dataset, train_manifest=None)
    dataset = cli_common.training_clips(args, PretrainConfig(model=MODEL), 1, DistEnv())
    whole = train_loaders(dataset, 8, 0, DistEnv(), seed=1, epochs=2)
    micro = train_loaders(dataset, 8, 0, DistEnv(), seed=1, epochs=2, micro_batch=2)
    assert len(whole(0)) == 2 and len(micro(0)) == 8  # 20 videos: 2 steps of 8 (4 left out), 4 micro-steps each
    for epoch in (1, 0):
        batches, micros = list(whole(epoch)), list(micro(epoch))
        for i, (clips, labels, bad) in enumerate(batches):
            part = micros[4 * i:4 * i + 4]
            assert torch.equal(torch.cat([m[0] for m in part]), clips)  # same videos, same augmentations
            assert torch.equal(torch.cat([m[1] for m in part]), labels)


def test_accumulation_steps_and_micro_batch_per_process():
    assert accumulation_steps(256, 0, DistEnv()) == 1 and micro_batch_size(256, 0, DistEnv(0, 8)) == 32
    assert accumulation_steps(256, 32, DistEnv()) == 8  # one GPU
    assert accumulation_steps(256, 32, DistEnv(0, 2)) == 4  # two GPUs
    assert accumulation_steps(256, 32, DistEnv(0, 8)) == 1  # eight: the paper's 32 a GPU at once
    assert micro_batch_size(256, 32, DistEnv(0, 2)) == 32
    with pytest.raises(ConfigError, match=r"optim.micro_batch_size=24: optim.batch_size=256 .* multiple of "
                                          r"optim.micro_batch_size x world size = 24 x 2 = 48"):
        accumulation_steps(256, 24, DistEnv(0, 2))
    with pytest.raises(ConfigError, match=r"optim.micro_batch_size=64: .* 64 x 8 = 512"):
        accumulation_steps(256, 64, DistEnv(0, 8))


def test_config_checks_the_micro_batch():
    assert build_config(PretrainConfig).optim.micro_batch_size == 0
    assert build_config(PretrainConfig, overrides=["optim.batch_size=256", "optim.micro_batch_size=32"]
                        ).optim.micro_batch_size == 32
    with pytest.raises(ConfigError, match=r"optim.micro_batch_size=12: expected a divisor of optim.batch_size=256"):
        build_config(PretrainConfig, overrides=["optim.batch_size=256", "optim.micro_batch_size=12"])
    with pytest.raises(ConfigError, match=r"optim.micro_batch_size=-1: expected >= 0"):
        build_config(PretrainConfig, overrides=["optim.micro_batch_size=-1"])
    with pytest.raises(ConfigError, match=r"optim.micro_batch_size=1: expected an even clip count a micro-step"):
        build_config(FinetuneConfig, overrides=["mixup=0.8", "optim.batch_size=8", "optim.micro_batch_size=1"])
    assert build_config(FinetuneConfig, overrides=["mixup=0.8", "optim.batch_size=8", "optim.micro_batch_size=1",
                                                   "data.repeated_sampling=2"]).optim.micro_batch_size == 1


def test_runs_saved_before_the_key_existed_resume_without_accumulation():
    saved = {"optim": {"batch_size": 8}}  # a config written before optim.micro_batch_size existed
    assert config_differences(saved, {"optim": {"batch_size": 8, "micro_batch_size": 0}}) == []
    assert config_differences(saved, {"optim": {"batch_size": 8, "micro_batch_size": 4}}) == [
        "optim.micro_batch_size: None saved, 4 now"]


if __name__ == "__main__":
    ddp_main(Path(sys.argv[1]))
