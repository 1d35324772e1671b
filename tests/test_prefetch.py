"""DevicePrefetcher: pass-through off CUDA, nested batches moved, one batch ahead on a side stream."""

from __future__ import annotations

import pytest
import torch

from vmae.train import prefetch
from vmae.train.prefetch import DevicePrefetcher, Pinner, default_pin_threads, map_tensors, to_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def batches(count: int) -> list[list]:
    """Loader-like batches: [uint8 clips (2, 3, 4, 8, 8), labels (2,), bad (2,), a non-tensor]."""
    gen = torch.Generator().manual_seed(0)
    return [[torch.randint(0, 256, (2, 3, 4, 8, 8), dtype=torch.uint8, generator=gen),
             torch.tensor([i, i + 1]), torch.tensor([0, i]), f"batch {i}"] for i in range(count)]


def test_map_tensors_keeps_the_structure_and_non_tensors():
    batch = ([torch.ones(2), {"a": torch.zeros(1), "b": 3}], torch.arange(3), "x")
    doubled = map_tensors(batch, lambda t: 2 * t)
    assert isinstance(doubled, tuple) and isinstance(doubled[0], list) and doubled[2] == "x"
    assert doubled[0][0].tolist() == [2.0, 2.0] and doubled[0][1]["b"] == 3
    assert doubled[1].tolist() == [0, 2, 4]


def test_to_device_moves_every_tensor():
    batch = [torch.ones(2, 3), (torch.arange(4), 5)]
    moved = to_device(batch, torch.device("meta"))
    assert moved[0].device.type == moved[1][0].device.type == "meta"
    assert moved[0].shape == (2, 3) and moved[1][1] == 5


def test_cpu_passes_batches_through_unchanged():
    loader = batches(3)
    prefetcher = DevicePrefetcher(loader, torch.device("cpu"))
    assert len(prefetcher) == 3
    out = list(prefetcher)
    assert len(out) == 3 and all(a is b for a, b in zip(out, loader))
    assert [b[3] for b in prefetcher] == ["batch 0", "batch 1", "batch 2"]  # iterable again


@needs_cuda
@pytest.mark.parametrize("count", [0, 1, 4])
def test_cuda_batches_arrive_on_the_device_equal_and_in_order(count):
    device = torch.device("cuda")
    loader = [map_tensors(b, lambda t: t.pin_memory()) for b in batches(count)]
    out = []
    for batch in DevicePrefetcher(loader, device):
        clips, labels, bad, name = batch
        assert clips.is_cuda and labels.is_cuda and bad.is_cuda
        assert clips.to(device, non_blocking=True) is clips  # the step's .to(device) is a no-op
        out.append((clips.sum().item(), labels.tolist(), name))  # read on the consumer's stream
    assert out == [(b[0].sum().item(), b[1].tolist(), b[3]) for b in loader]


@needs_cuda
def test_cuda_copy_is_on_a_side_stream_and_ahead_by_one(monkeypatch):
    device = torch.device("cuda")
    main = torch.cuda.current_stream(device)
    seen: list[int] = []
    copy_streams: list[torch.cuda.Stream] = []

    def spy(batch, dev):
        copy_streams.append(torch.cuda.current_stream(dev))
        return to_device(batch, dev)

    monkeypatch.setattr(prefetch, "to_device", spy)

    class Loader:
        def __len__(self) -> int:
            return 3

        def __iter__(self):
            for i in range(3):
                seen.append(i)
                yield torch.full((1000,), i, dtype=torch.float32).pin_memory()

    for i, x in enumerate(DevicePrefetcher(Loader(), device)):
        assert seen == list(range(min(i + 2, 3)))  # batch i+1 is already staged when i is handed over
        assert torch.cuda.current_stream(device) == main
        assert (x * 2).sum().item() == 2 * i * 1000
    assert len(copy_streams) == 3 and all(s != main for s in copy_streams)


def test_pin_leaves_device_tensors_alone():
    meta = torch.empty(3, device="meta")
    with Pinner(4) as pinner:
        assert pinner.pin(meta) is meta


@pytest.mark.parametrize("threads, shape, sliced", [(1, (6, 3, 8, 16, 16), False), (4, (6, 3, 8, 16, 16), True),
                                                    (3, (7, 3, 5, 61, 67), True), (4, (10,), False)])
def test_sliced_copy_equals_the_source(monkeypatch, threads, shape, sliced):
    """Contiguous tensors of at least 1 KiB a thread (here) go in slices over the threads, odd
    sizes too; smaller ones in one copy."""
    monkeypatch.setattr(prefetch, "MIN_SLICE_BYTES", 1024)
    src = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    dst = torch.zeros_like(src)
    with Pinner(threads) as pinner:
        maps = []
        if pinner._pool is not None:
            real_map = pinner._pool.map
            pinner._pool.map = lambda fn, items: maps.append(1) or real_map(fn, items)
        assert pinner.copy(dst, src) is dst
    assert torch.equal(dst, src) and bool(maps) is sliced


def test_sliced_copy_of_a_non_contiguous_source(monkeypatch):
    monkeypatch.setattr(prefetch, "MIN_SLICE_BYTES", 1024)
    src = torch.arange(1 << 16).to(torch.uint8).view(2, -1).t()  # transposed: one copy
    dst = torch.empty_like(src)
    with Pinner(4) as pinner:
        pinner.copy(dst, src)
    assert torch.equal(dst, src)


def test_default_pin_threads_share_the_cpus_among_local_ranks(monkeypatch):
    monkeypatch.setattr(prefetch.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_pin_threads() == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert default_pin_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert default_pin_threads() == 1


@needs_cuda
def test_unpinned_batches_are_pinned_then_moved_equal():
    device = torch.device("cuda")
    loader = batches(3)  # pageable, as the training loader now hands them over
    assert not loader[0][0].is_pinned()
    with Pinner(4) as pinner:
        pinned = pinner.pin(loader[0][0])
        assert pinned.is_pinned() and torch.equal(pinned, loader[0][0]) and pinner.pin(pinned) is pinned
    out = [(clips.sum().item(), labels.tolist()) for clips, labels, _, _ in DevicePrefetcher(loader, device)]
    assert out == [(b[0].sum().item(), b[1].tolist()) for b in loader]


def test_namedtuples_keep_their_type():
    from vmae.data.device_augment import Visits

    visits = Visits(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), torch.zeros(1, 1, 2, dtype=torch.long),
                    torch.zeros(1, 1, 4, dtype=torch.long), torch.zeros(1, 1, dtype=torch.bool))
    moved = to_device((visits, torch.ones(1)), torch.device("meta"))
    assert isinstance(moved[0], Visits) and moved[0].frames.device.type == "meta"


@needs_cuda
def test_cuda_transform_runs_on_the_side_stream_before_hand_over():
    device = torch.device("cuda")
    main = torch.cuda.current_stream(device)
    streams: list[torch.cuda.Stream] = []

    def double_clips(batch):
        streams.append(torch.cuda.current_stream(device))
        clips, labels, bad, name = batch
        return [clips.float() * 2, labels, bad, name]

    loader = batches(3)
    out = [(clips.sum().item(), name) for clips, _, _, name in DevicePrefetcher(loader, device, double_clips)]
    assert out == [(2 * b[0].float().sum().item(), b[3]) for b in loader]
    assert len(streams) == 3 and all(s != main for s in streams)
