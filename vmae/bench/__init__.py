"""`vmae bench model|loader|train|memory`: benchmarks (throughput, memory) that print one JSON object.

Each target module defines ``add_arguments(parser)`` and ``run(args) -> dict``.
"""

from __future__ import annotations

import argparse
import importlib
import json

TARGETS = {
    "model": ("vmae.bench.model", "clips/s and MFU of a full training step (pretrain and fine-tune)"),
    "loader": ("vmae.bench.loader", "clips/s of naive decoding vs the project's loader and frame cache"),
    "train": ("vmae.bench.train", "pretraining clips/s fed by the real loader vs a batch on the device"),
    "memory": ("vmae.bench.memory", "peak GPU memory of each training recipe's micro-batch (paper.yaml)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (module_name, help_text) in TARGETS.items():
        target_parser = sub.add_parser(name, help=help_text)
        importlib.import_module(module_name).add_arguments(target_parser)


def main(args: argparse.Namespace) -> int:
    result = importlib.import_module(TARGETS[args.target][0]).run(args)
    print(json.dumps(result, indent=2))
    return 0
