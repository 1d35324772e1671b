"""The `vmae` command line: one sub-command per module, imported only when it runs.

Each command module defines ``add_arguments(parser)`` and ``main(args) -> int | None``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vmae.errors import UserError

# name -> (module, one-line help). Modules are imported lazily so `vmae --help` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("vmae.data.prepare", "prepare a dataset: manifests, classes and (synthetic) videos"),
    "subset": ("vmae.data.subset", "write a stratified, nested subset of a manifest"),
    "export-list": ("vmae.data.export", "export a manifest to the official VideoMAE list format"),
    "show": ("vmae.data.show", "render a grid of sample clips of a dataset to a PNG"),
    "cache": ("vmae.data.frame_cache", "pre-decode a dataset's videos into a memory-mapped frame cache"),
    "mirror": ("vmae.rehearsal.mirror", "build the rehearsal's stand-in data: UCF101 / HMDB51 archives and "
               "their sources file, SSv2 / K400 files"),
    "pretrain": ("vmae.train.pretrain", "self-supervised pretraining by a registered method (vmae.methods)"),
    "finetune": ("vmae.train.finetune", "supervised fine-tuning (from a checkpoint or from scratch)"),
    "linprobe": ("vmae.train.linprobe", "linear probe on frozen, mean-pooled encoder features"),
    "reconstruct": ("vmae.train.reconstruct", "picture of VideoMAE reconstructions of validation clips"),
    "table": ("vmae.report.tables", "build a study table (rows, paired comparisons, claims) from metrics.json files"),
    "claims": ("vmae.report.claims", "a verdict on each claim of the paper from the studies' claim files"),
    "power": ("vmae.report.power", "paired seeds each claim needs for 80%% power, from a pilot's claim files"),
    "cost": ("vmae.report.cost", "CPU and wall seconds by kind of job, from Snakemake's benchmark files"),
    "plot": ("vmae.report.plots", "plot a study table"),
    "curves": ("vmae.report.curves", "plot the training curves (loss, periodic top-1) of runs from their log.jsonl"),
    "bench": ("vmae.bench", "benchmark the model step or the data loader"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmae", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        build_parser().parse_args(argv)  # prints help or the error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"vmae {name}", description=module.__doc__ or help_text)
    module.add_arguments(parser)
    # Intermixed parsing lets key=value overrides stand between flags; it cannot handle
    # sub-commands (vmae bench model|loader), which parse as usual.
    has_subcommands = any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    args = parser.parse_args(rest) if has_subcommands else parser.parse_intermixed_args(rest)
    try:
        return int(module.main(args) or 0)
    except UserError as err:
        print(f"vmae {name}: error: {err}", file=sys.stderr)
        return 2
