"""Single-process or `torchrun` data-parallel execution.

Under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in the environment) the process group
is initialised (NCCL on CUDA, gloo on CPU), every process reads its own shard through a
``DistributedSampler`` and gradients are averaged by DDP. ``optim.batch_size`` is the GLOBAL batch:
each process takes ``batch_size / world_size`` an optimiser step. Only rank 0 writes files.

Gradient accumulation: with ``optim.micro_batch_size = b`` (videos a process holds at once) one
optimiser step is ``k = batch_size / (b * world_size)`` micro-steps of ``b`` videos a process
(``accumulation_steps``); the global batch, and so the lr and the schedule, stay the recipe's. The
loop runs the ``k - 1`` micro-steps that do not step under DDP's ``no_sync`` (``no_sync`` here):
gradients add up locally and are all-reduced once, in the last micro-step's backward.

Without ``torchrun`` the same code runs with ``world_size = 1`` (and still a ``DistributedSampler``,
so the data order is a function of ``(seed, epoch)`` in both cases).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from vmae.config import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True for the one process that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda if available else cpu; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r}: CUDA is not available on this machine")
    return device


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the ``torchrun`` process group if the environment has one; else a single process.

    On CUDA each process uses ``cuda:LOCAL_RANK``.
    """
    base = resolve_device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistEnv(0, 1, base)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if base.type == "cuda":
        base = torch.device("cuda", local_rank)
        torch.cuda.set_device(base)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo")
    return DistEnv(rank, world_size, base)


def shutdown(env: DistEnv) -> None:
    """Leave the process group (no-op for a single process)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def local_batch_size(global_batch: int, env: DistEnv) -> int:
    """``global_batch / world_size``; an error if it does not divide."""
    if global_batch % env.world_size:
        raise ConfigError(
            f"optim.batch_size={global_batch} is the global batch and must be divisible by the "
            f"world size {env.world_size}"
        )
    return global_batch // env.world_size


def accumulation_steps(global_batch: int, micro_batch: int, env: DistEnv) -> int:
    """Micro-steps an optimiser step: ``global_batch / (micro_batch * world_size)``; 1 when
    ``micro_batch`` is 0 (no accumulation: each process takes ``global_batch / world_size`` at once).
    A ConfigError when it does not divide."""
    if not micro_batch:
        local_batch_size(global_batch, env)
        return 1
    per_step = micro_batch * env.world_size
    if global_batch % per_step:
        raise ConfigError(
            f"optim.micro_batch_size={micro_batch}: optim.batch_size={global_batch} (the global batch) "
            f"must be a multiple of optim.micro_batch_size x world size = {micro_batch} x {env.world_size} "
            f"= {per_step}"
        )
    return global_batch // per_step


def micro_batch_size(global_batch: int, micro_batch: int, env: DistEnv) -> int:
    """Videos this process takes a micro-step: ``micro_batch``, or ``global_batch / world_size``
    when it is 0 (checked as ``accumulation_steps`` checks it)."""
    return global_batch // (env.world_size * accumulation_steps(global_batch, micro_batch, env))


def no_sync(net: nn.Module, sync: bool) -> AbstractContextManager:
    """Around a micro-step's forward and backward: DDP's ``no_sync()`` (gradients stay local, no
    all-reduce) unless ``sync``; a no-op for a module that is not DDP. ``net`` may be
    ``torch.compile``-d: the DDP module under it is used (DDP's forward runs eagerly around the
    compiled module, so its flag holds)."""
    ddp = getattr(net, "_orig_mod", net)
    if sync or not isinstance(ddp, nn.parallel.DistributedDataParallel):
        return nullcontext()
    return ddp.no_sync()


def build_sampler(dataset: Dataset, env: DistEnv, shuffle: bool, seed: int) -> DistributedSampler:
    """This process's shard; with ``shuffle`` the order is a function of (seed, epoch) only
    (call ``sampler.set_epoch(epoch)`` before each epoch)."""
    return DistributedSampler(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=shuffle, seed=seed)


def wrap_model(model: nn.Module, env: DistEnv, compile_model: bool = False) -> nn.Module:
    """Move ``model`` to the device, wrap it in DDP when distributed, and ``torch.compile`` it on
    CUDA when asked. Returns the module to call in the training step; keep ``model`` itself for
    state dicts."""
    if env.distributed and env.device.type == "cuda":
        # MoCo v3's BatchNorm heads normalise over the batch of all processes, as in MoCo v3
        # (converted in place, so ``model``'s state dict keeps its keys): the global batch, or with
        # gradient accumulation one micro-step's micro_batch x world size. SyncBatchNorm runs on CUDA only.
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(env.device)
    wrapped: nn.Module = model
    if env.distributed:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(wrapped, device_ids=device_ids)
    if compile_model and env.device.type == "cuda":
        wrapped = torch.compile(wrapped)
    return wrapped


def all_reduce(tensor: torch.Tensor, env: DistEnv, op: dist.ReduceOp = dist.ReduceOp.SUM) -> torch.Tensor:
    """Reduce ``tensor`` over processes in place (sum by default); returned for convenience."""
    if env.distributed:
        dist.all_reduce(tensor, op=op)
    return tensor
