"""Batches moved to the GPU one step ahead, on a side CUDA stream, overlapping the copy with compute.

``DevicePrefetcher(loader, device)`` iterates ``loader`` and yields its batches with every tensor
(in nested tuples / lists / dicts) already on ``device``. On CUDA a tensor not yet in pinned memory
is first copied into a pinned buffer by ``pin_threads`` threads, one slice each (``Pinner``):
the DataLoader's own ``pin_memory`` copies each batch on one thread, too slow for large batches
(docs/design-notes.md). The threads are the prefetcher's own, not torch's intra-op threads, which
are often 1 where the GPU is (torchrun sets ``OMP_NUM_THREADS=1`` for every rank).
The copy of batch i+1 to the device is then issued ``non_blocking`` on a side stream before batch
i is handed over; the consumer's stream waits on an event recorded after that copy only (not on the
whole side stream), and each tensor is ``record_stream``-ed on the consumer's stream so the caching
allocator does not hand its memory back to the side stream while compute still reads it. Off CUDA
the batches pass through unchanged. ``len()`` is the loader's, so ``tqdm`` shows a total.

``transform`` (e.g. ``vmae.data.device_augment.RenderClips``) is applied to each batch once it is on
the device: on CUDA on the side stream right after its copy, so it too runs ahead of the step that
consumes it; off CUDA as each batch arrives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

MIN_SLICE_BYTES = 4 << 20  # smaller tensors are copied by the calling thread alone


def default_pin_threads() -> int:
    """This process's share of the CPUs it may run on (divided among torchrun's local ranks), at
    most 8: memory bandwidth, not cores, bounds a copy beyond that."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cpus // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def map_tensors(batch: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``batch`` with ``fn`` applied to each of its tensors, through nested tuples, lists and dicts;
    anything else is kept as it is."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a NamedTuple
        return type(batch)(*(map_tensors(b, fn) for b in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(map_tensors(b, fn) for b in batch)
    if isinstance(batch, dict):
        return {k: map_tensors(v, fn) for k, v in batch.items()}
    return batch


class Pinner:
    """Copies CPU tensors into pinned memory with ``threads`` threads, one contiguous slice each
    (``copy_`` releases the GIL), whatever torch's intra-op thread count. A context manager."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pin") if threads > 1 else None

    def __enter__(self) -> Pinner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def copy(self, dst: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """``dst.copy_(src)``, sliced over the threads when both are contiguous and large enough. -> dst"""
        n = self.threads
        if self._pool is None or not (dst.is_contiguous() and src.is_contiguous()) or src.nbytes < n * MIN_SLICE_BYTES:
            return dst.copy_(src)
        pairs = zip(dst.view(-1).chunk(n), src.view(-1).chunk(n))
        for _ in self._pool.map(lambda pair: pair[0].copy_(pair[1]), pairs):
            pass  # wait for every slice (and raise the first error)
        return dst

    def pin(self, tensor: torch.Tensor) -> torch.Tensor:
        """A CPU tensor in pinned memory: itself if already pinned, else a copy into a buffer of
        torch's caching host allocator (which reuses it only after the asynchronous copies that
        read it have finished)."""
        if tensor.device.type != "cpu" or tensor.is_pinned():
            return tensor
        return self.copy(torch.empty_like(tensor, pin_memory=True), tensor)


def to_device(batch: Any, device: torch.device) -> Any:
    """Every tensor of ``batch`` copied to ``device`` with ``non_blocking=True`` (asynchronous from
    pinned memory); a tensor already there is returned as it is."""
    return map_tensors(batch, lambda t: t.to(device, non_blocking=True))


class DevicePrefetcher:
    """``loader``'s batches with their tensors on ``device``, copied (and transformed) one batch
    ahead on CUDA."""

    def __init__(self, loader: Iterable, device: torch.device, transform: Callable[[Any], Any] | None = None,
                 pin_threads: int | None = None) -> None:
        self.loader = loader
        self.device = device
        self.transform = transform
        self.pin_threads = pin_threads or default_pin_threads()

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        if self.device.type != "cuda":
            yield from self.loader if self.transform is None else map(self.transform, self.loader)
            return
        side = torch.cuda.Stream(device=self.device)
        pending: tuple[Any, torch.cuda.Event] | None = None
        with Pinner(self.pin_threads) as pinner:
            for batch in self.loader:
                staged = self._stage(batch, side, pinner)
                if pending is not None:
                    yield self._hand_over(*pending)
                pending = staged
        if pending is not None:
            yield self._hand_over(*pending)

    def _stage(self, batch: Any, side: torch.cuda.Stream, pinner: Pinner) -> tuple[Any, torch.cuda.Event]:
        """Pin ``batch``, issue its copy (and transform) on ``side``; -> (device batch, event
        recorded after them)."""
        pinned = map_tensors(batch, pinner.pin)
        with torch.cuda.stream(side):
            moved = to_device(pinned, self.device)
            if self.transform is not None:
                moved = self.transform(moved)
            done = torch.cuda.Event()
            done.record(side)
        return moved, done

    def _hand_over(self, batch: Any, done: torch.cuda.Event) -> Any:
        """Make the consumer's (current) stream wait for ``batch``'s copy; mark its memory as used there."""
        stream = torch.cuda.current_stream(self.device)
        stream.wait_event(done)

        def used_on_stream(tensor: torch.Tensor) -> torch.Tensor:
            tensor.record_stream(stream)
            return tensor

        return map_tensors(batch, used_on_stream)
