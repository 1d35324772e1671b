"""A training process's batches: its shard of the videos, its batch and micro-batch sizes, and the
loader chain of ``vmae.data.loaders`` that serves them epoch after epoch."""

from __future__ import annotations

from collections.abc import Callable

from vmae.config import ConfigError
from vmae.data.dataset import TrainingClips
from vmae.data.loaders import (
    EpochBatches,
    EpochSampler,
    RunBatchSampler,
    build_run_loader,
)
from vmae.train.distributed import (
    DistEnv,
    accumulation_steps,
    build_sampler,
    local_batch_size,
    micro_batch_size,
)
from vmae.train.step import derive_seed


def train_loaders(dataset: TrainingClips, global_batch: int, num_workers: int, env: DistEnv, seed: int,
                  epochs: int | None, micro_batch: int = 0) -> Callable[[int], EpochBatches]:
    """``make_loader(epoch)`` for the loop: this process's shard in a (seed, epoch) order, full
    batches of ``global_batch / world_size`` videos, each video's augmentation a function of
    (seed, epoch, video) only (``EpochSampler`` keys); ``epochs``: the run's (None: no end).

    micro_batch (``optim.micro_batch_size``; 0 = none): the loader yields micro-batches of
    ``micro_batch`` videos, ``k = global_batch / (micro_batch * world_size)`` of them an optimiser
    step (``RunBatchSampler(group=k)``): the same videos, augmentations and order as the step's
    batch, cut in k. The loader cuts, not the loop, to keep memory low where it binds: the device
    (the ``DevicePrefetcher`` holds the micro-batch computing and the next one; ``RenderClips``' crops
    and the normalised float copy are made a micro-batch at a time), the pinned host buffers and the
    workers' shared memory all hold micro-batches, never a whole step's batch. Cutting a step's batch
    on the device would hold all of it there (and twice, with the prefetched one); the activations,
    per micro-batch either way, dominate, but a per-process batch of ViT-B clips is still 0.6 GB of
    uint8 (2.4 GB as float) at 256 clips. Loader throughput (clips/s) is the same, in smaller batches.

    All epochs come from one DataLoader iteration (``RunLoader``): its persistent workers start
    once and, taking the epochs in order, go on decoding the next epoch's first batches while the
    current epoch ends. Iterate each epoch before asking for the next (the loop does).
    Batches stay in the workers' shared memory: the loop's ``DevicePrefetcher`` pins them with
    its own threads (the DataLoader's pinning thread is single-threaded)."""
    local_batch_size(global_batch, env)
    micro, group = micro_batch_size(global_batch, micro_batch, env), accumulation_steps(global_batch, micro_batch, env)
    if len(dataset) < global_batch:
        raise ConfigError(f"{dataset.manifest}: {len(dataset)} training videos, fewer than one batch "
                         f"(optim.batch_size={global_batch}); lower optim.batch_size")
    sampler = EpochSampler(build_sampler(dataset, env, shuffle=True, seed=seed), seed)
    run = build_run_loader(dataset, RunBatchSampler(sampler, micro, epochs, group), seed=derive_seed(seed, 0, env.rank),
                           num_workers=num_workers, pin_memory=False)
    return run.epoch
