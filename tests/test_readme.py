"""Every command in the README's bash blocks is run by a test, as written (issue 15, part 3).

tests/test_workflow.py runs the five-studies and GPU commands (dry runs, `-n` added where they
would train); this file runs the rest: the two first commands (`pip install --dry-run`, a dry run,
`pytest --collect-only`: a suite cannot run itself), the SLURM and rehearsal commands as dry runs,
and every `vmae` command: parsed by its own argument parser and typed config, the data commands run
as written on a tiny prepared dataset in results/data/synthetic-clean, the training ones with
`--help` (they would train for minutes). An inventory test fails when a README command belongs to
no section these tests read.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vmae import cli

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 600
# README section -> what runs its commands
SECTIONS = {
    "## Two commands": "test_readme.py::test_two_commands",
    "## The studies": "test_workflow.py::test_readme_study_commands_plan_their_tables_and_claims + "
                           "test_claims.py::test_readme_power_command_runs_as_written",
    "## The paper's settings on GPUs and on SLURM": "test_workflow.py::test_readme_gpu_commands_* + "
                                                    "test_readme.py::test_slurm_and_rehearsal_commands",
    "## The commands (each runs by hand too)": "test_readme.py::test_vmae_commands_*",
}
TRAINING = {"pretrain", "finetune", "linprobe", "reconstruct", "bench"}


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def blocks(text: str) -> list[str]:
    """Command lines of the bash blocks in ``text``: continuations joined, comments and blank lines
    dropped, whitespace collapsed; ``a | b`` and ``a && b`` stay one line."""
    lines = "\n".join(re.findall(r"```bash\n(.*?)```", text, re.DOTALL)).replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words:
            commands.append(" ".join(w if w in ("&&", "|") else shlex.quote(w) for w in words))
    return commands


def section_commands(section: str) -> list[str]:
    text = (REPO / "README.md").read_text().split(f"\n{section}\n", 1)[1]
    return blocks(re.split(r"\n## ", text, maxsplit=1)[0])


def run(command: str, cwd: Path, timeout: int = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env(), check=False)


def test_every_readme_command_is_in_a_section_a_test_runs():
    everything = blocks((REPO / "README.md").read_text())
    covered = [c for section in SECTIONS for c in section_commands(section)]
    assert len(everything) >= 25
    assert sorted(everything) == sorted(covered), set(everything) - set(covered)


def test_two_commands(tmp_path):
    """`pip install -e . && snakemake ...` and `pip install -e '.[test]' && pytest`: pip resolves the
    install without installing (--dry-run), the workflow plans the main table (-n), and pytest
    collects the suite (--collect-only; running the suite inside itself would recurse)."""
    commands = section_commands("## Two commands")
    assert commands == ["pip install -e . && snakemake --cores all results/table_data_efficiency.csv",
                        "pip install -e '.[test]' && pytest"]
    for command in commands:
        for part in command.split(" && "):
            words = shlex.split(part)
            if words[0] == "pip":
                words = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", *words[2:]]
                result = subprocess.run(words, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, check=False)
                assert result.returncode == 0 and "Would install vmae-" in result.stdout, result.stderr[-2000:]
            elif words[0] == "snakemake":
                result = run(f"{part} -n --directory {shlex.quote(str(tmp_path))}", REPO)
                assert result.returncode == 0 and "rule table:" in result.stdout, result.stderr[-2000:]
            else:
                assert words == ["pytest"]
                result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=REPO,
                                        capture_output=True, text=True, timeout=TIMEOUT, env=env(), check=False)
                assert result.returncode == 0 and re.search(r"\d{3,} tests collected", result.stdout), \
                    result.stdout[-2000:]


@pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                    reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
def test_slurm_and_rehearsal_commands(tmp_path):
    """The SLURM command (-n: nothing is submitted) plans the paper's DAG through the profile; the
    rehearsal command, from an empty working directory, plans the same jobs plus the one that builds
    its mirror (.ci/readme_commands.sh runs it for real)."""
    commands = [c for c in section_commands("## The paper's settings on GPUs and on SLURM")
                if "slurm" in c or "rehearsal" in c]
    assert commands[0] == "pip install -e '.[slurm]'" and len(commands) == 3
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "-e", ".[slurm]"],
                         cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert pip.returncode == 0, pip.stderr[-2000:]
    totals = []
    for i, command in enumerate(commands[1:]):
        work = tmp_path / str(i)
        work.mkdir()
        result = run(f"{command} -n --directory {shlex.quote(str(work))}", REPO)
        out = result.stdout + result.stderr
        assert result.returncode == 0, command + "\n" + out[-3000:]
        totals.append(int(re.search(r"^total\s+(\d+)$", out, re.MULTILINE)[1]))
    assert "rule mirror:" in out and totals[1] == totals[0] + 1  # the rehearsal's own job: its mirror


# --------------------------------------------------------------------------- vmae commands


def vmae_commands() -> list[list[str]]:
    """The `vmae ...` commands of the README's command block, each as argv (a pipe: two commands)."""
    out = []
    for line in section_commands("## The commands (each runs by hand too)"):
        words = shlex.split(line)
        while "|" in words:
            out.append(words[:words.index("|")])
            words = words[words.index("|") + 1:]
        out.append(words)
    return out


def parse(argv: list[str]) -> argparse.Namespace:
    """``argv`` through the command's own parser, as `vmae` parses it (SystemExit on a bad flag)."""
    assert argv[0] == "vmae" and argv[1] in cli.COMMANDS, argv
    module = importlib.import_module(cli.COMMANDS[argv[1]][0])
    parser = argparse.ArgumentParser(prog=f"vmae {argv[1]}")
    module.add_arguments(parser)
    if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
        return parser.parse_args(argv[2:])
    return parser.parse_intermixed_args(argv[2:])


def test_vmae_commands_parse_and_their_overrides_build_typed_configs():
    from vmae.config import FinetuneConfig, PretrainConfig, build_config

    commands = vmae_commands()
    assert [c[1] for c in commands] == ["prepare", "subset", "show", "pretrain", "pretrain", "finetune", "finetune",
                                        "linprobe", "reconstruct", "cache", "export-list", "bench", "bench"]
    for argv in commands:
        args = parse(argv)
        overrides = [a for a in argv[2:] if "=" in a and not a.startswith("-")]
        if argv[1] in ("pretrain", "finetune"):
            cfg = build_config(PretrainConfig if argv[1] == "pretrain" else FinetuneConfig, None, overrides)
            assert cfg.optim.base_lr == pytest.approx(1.2e-2 if overrides else type(cfg)().optim.base_lr)
        if argv[1] == "pretrain":
            assert args.epochs == (150 if args.method is None or args.method == "videomae" else 20)


def test_vmae_help_lists_every_command(tmp_path):
    """`vmae --help` (run by .ci/readme_commands.sh): argparse %-formats each command's help, so a
    bare '%' in one breaks the whole listing."""
    result = run("vmae --help", tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(name in result.stdout for name in cli.COMMANDS)


@pytest.mark.parametrize("command", sorted(TRAINING))
def test_vmae_training_commands_answer_help(command, tmp_path):
    result = run(f"vmae {command} --help", tmp_path, timeout=120)
    assert result.returncode == 0 and f"usage: vmae {command}" in result.stdout, result.stderr[-2000:]


@pytest.mark.slow
def test_vmae_data_commands_run_as_written_on_a_tiny_dataset(tmp_path, tiny_dataset):
    """`vmae prepare synthetic-clean` would write 1,000 videos: its place is taken by the tiny prepared
    dataset (10 classes, 2 train + 1 val videos each); subset, show, cache and export-list then run
    exactly as the README writes them."""
    shutil.copytree(tiny_dataset, tmp_path / "results" / "data" / "synthetic-clean")
    data = tmp_path / "results" / "data" / "synthetic-clean"
    for name in ("train.csv", "val.csv", "test.csv"):  # the copy's manifests name its own videos
        path = data / name
        if path.exists():
            path.write_text(path.read_text().replace(str(tiny_dataset), str(data)))
    ran = []
    for argv in vmae_commands():
        if argv[1] in TRAINING or argv[1] == "prepare":
            continue
        result = run(shlex.join(argv), tmp_path)
        assert result.returncode == 0, shlex.join(argv) + "\n" + result.stderr[-3000:]
        ran.append(argv[1])
    assert ran == ["subset", "show", "cache", "export-list"]
    assert len((tmp_path / "sub.csv").read_text().splitlines()) >= 5
    assert (tmp_path / "samples.png").stat().st_size > 1000
    assert (tmp_path / "results" / "cache" / "synthetic-clean" / "index.json").is_file()
    exported = (tmp_path / "lists" / "train.csv").read_text().splitlines()
    assert len(exported) == 20 and all(re.fullmatch(r"\S+ \d", line) for line in exported)
