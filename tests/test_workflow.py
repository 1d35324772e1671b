"""The Snakemake workflow: lint, format, dry runs of the default and paper configs, config errors,
and (slow) a full run of workflow/config/test.yaml checking every table's rows and columns."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vmae.report import studies

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "workflow" / "config"
STUDIES = list(studies.DEFAULT_STUDIES)  # the default target's; the on-demand masking regime is not among them

pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake is not installed")


def snakemake(workdir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with ``workdir`` as working directory (results land there)."""
    command = ["snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    block = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.MULTILINE)}


@pytest.mark.slow
def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_snakefmt_check():
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk")),
             *sorted((REPO / "datasets").glob("*.smk"))]
    result = subprocess.run(["snakefmt", "--check", *map(str, files)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_default_dry_run_plans_every_studys_table(tmp_path):
    result = snakemake(tmp_path, "--dry-run", "--cores", "2")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    counts = job_counts(out)
    assert counts["table"] == len(STUDIES) == 6 and counts["claims"] == 1
    assert "plot" not in counts  # a table job draws its figure
    assert counts["prepare_synthetic"] == 2 and "prepare" not in counts  # synthetic-clean, synthetic-clutter
    for study in STUDIES:
        assert f"results/table_{study}.csv" in out and f"results/figures/{study}.png" in out
    # a run shared by several studies (VideoMAE tube 0.9 on the full target) is planned once
    pretrain_runs = re.findall(r"^rule pretrain:\n(?:    .*\n)*?    wildcards: run=(\S+)$", out, re.MULTILINE)
    assert len(pretrain_runs) == counts["pretrain"] == len(set(pretrain_runs))
    assert "videomae_synthetic-clean_f1.0_tube0.9_s0" in pretrain_runs
    # the data-size study runs at a step budget of its own, named in its runs (config.yaml: steps 1400)
    assert {f"videomae_synthetic-clean_f{f}_tube0.9_n1400_s0" for f in ("0.3", "1.0", "4.0")} <= set(pretrain_runs)


@pytest.mark.slow
def test_the_default_config_plans_a_frame_cache_of_every_split_and_trains_from_it(tmp_path):
    assert yaml.safe_load((CONFIGS / "config.yaml").read_text())["datasets"]["frame_cache"] is True
    result = snakemake(tmp_path, "results/table_data_efficiency.csv", "--dry-run", "--printshellcmds")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert job_counts(out)["frame_cache"] == 1
    assert ("vmae cache results/data/synthetic-clean --out results/cache/synthetic-clean --size 24"
            " --manifest results/data/synthetic-clean/test.csv --manifest results/data/synthetic-clean/unlabelled.csv"
            " --workers ") in out
    commands = [line for line in out.splitlines() if re.search(r"vmae (pretrain|finetune|linprobe) ", line)]
    assert commands and all("data.frame_cache=results/cache/synthetic-clean" in line for line in commands)


@pytest.mark.slow
def test_a_run_with_its_own_budget_gets_it_after_the_recipes(tmp_path):
    run = "videomae_synthetic-clean_f0.3_tube0.9_n1400_s0"
    result = snakemake(tmp_path, "--dry-run", "--printshellcmds", f"results/pretrain/{run}/checkpoint.pt")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    command = next(line for line in out.splitlines() if f"--out results/pretrain/{run} " in line)
    assert "--train-manifest results/data/synthetic-clean/train_frac0.3_s0.csv" in command
    assert command.split(" > ")[0].endswith("optim.steps=350 optim.steps=1400")  # the later one wins


@pytest.mark.slow
def test_main_table_plans_only_its_own_runs(tmp_path):
    config = yaml.safe_load((CONFIGS / "config.yaml").read_text())
    study = config["studies"]["data_efficiency"]
    seeds, targets = len(study.get("seeds", config["seeds"])), len(study["targets"])
    assert seeds >= 5  # the main table's claims rest on at least five paired seeds
    result = snakemake(tmp_path, "--dry-run", "--cores", "2", "results/table_data_efficiency.csv")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = job_counts(result.stdout)
    pretrained = [m for m in study["methods"] if m != "scratch"]
    assert counts["pretrain"] == targets * seeds * len(pretrained)
    assert counts["finetune"] == counts["linprobe"] == targets * seeds * len(study["methods"])
    assert counts["table"] == 1 and "reconstruct" not in counts
    assert "results/figures/data_efficiency.png" in result.stdout  # the main job draws its figure


@pytest.mark.slow
def test_paper_dry_run_plans_downloads(tmp_path):
    result = snakemake(tmp_path, "--dry-run", "--cores", "8", "--printshellcmds",
                       "--configfile", str(CONFIGS / "paper.yaml"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for name in ("ucf101", "hmdb51", "ssv2", "k400"):
        assert re.search(rf"vmae prepare \S*datasets/{name}\.yaml --out results/data/{name} "
                         rf"--raw results/raw/{name} ", out), name
    assert "_s1" not in out  # one seed: config.yaml's five for the main table do not leak into paper.yaml
    assert "optim.steps" not in out  # the paper's epochs: config.yaml's step budget does not leak in either
    counts = job_counts(out)
    assert counts["prepare"] == 4 and counts["table"] == len(STUDIES)
    # the paper's recipe reaches the commands: ViT-B 16x224, 3200 epochs on UCF101 at mask 0.75
    assert re.search(r"vmae pretrain .*--out results/pretrain/videomae_ucf101_f1.0_tube0.75_s0 .*"
                     r"--epochs 3200 .*model.size=vit_base model.img_size=224", out)
    # multi-GPU training runs under torchrun
    assert "torchrun --standalone --nproc_per_node 8 -m vmae finetune" in out


def readme_commands(section: str) -> list[str]:
    """The `snakemake ...` commands of a README section's bash blocks, continuation lines joined."""
    text = (REPO / "README.md").read_text().split(f"\n{section}\n", 1)[1]
    text = re.split(r"\n## ", text, maxsplit=1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [" ".join(line.split()) for line in lines if line.startswith("snakemake ")]


@pytest.mark.slow
def test_readme_study_commands_plan_their_tables_and_claims(tmp_path):
    """The README's study commands, run from the repository as written with `-n` added
    (`--directory` keeps the repository clean); the `--report` one needs finished results and runs
    in test_full_run_of_the_test_config."""
    commands = readme_commands("## The studies")
    assert len(commands) == 11  # the six studies, claims, all, report, the pilot and the masking regime
    for i, command in enumerate(c for c in commands if "--report" not in c):
        args = shlex.split(command, comments=True)[1:] + ["-n"]
        result = subprocess.run(["snakemake", *args, "--directory", str(tmp_path / str(i))], cwd=REPO,
                                capture_output=True, text=True, timeout=300)
        out = result.stdout + result.stderr
        assert result.returncode == 0, command + "\n" + out[-3000:]
        targets = [a for a in args if a.startswith("results/")]
        counts = job_counts(out)
        assert counts["table"] == (1 if targets and targets[0] != "results/table_claims.csv" else len(STUDIES)), command
        assert counts.get("claims", 0) == (0 if targets and targets[0] != "results/table_claims.csv" else 1), command
        if "pilot.yaml" in command:  # the pilot scores on val with its own seeds
            plan = subprocess.run(["snakemake", *args, "-p", "--directory", str(tmp_path / str(i))], cwd=REPO,
                                  capture_output=True, text=True, timeout=300).stdout
            assert "--eval-manifest results/data/synthetic-clean/val.csv" in plan and "_s100 " in plan
            training = [line for line in plan.splitlines() if re.search(r"vmae (pretrain|finetune|linprobe) ", line)]
            assert training and not any("test.csv" in line for line in training)  # no pilot run reads test


@pytest.mark.slow
def test_readme_gpu_commands_plan_the_paper_batch_on_8_and_on_1_gpu(tmp_path):
    """The README's GPU-section commands, run from the repository as written (`-n` added where they
    would train; `--directory` keeps the repository clean); the SLURM one needs an account."""
    commands = [c for c in readme_commands("## The paper's settings on GPUs and on SLURM")
                if "slurm" not in c and "rehearsal" not in c]
    assert len(commands) == 2
    outputs = []
    for i, command in enumerate(commands):
        args = shlex.split(command)[1:]
        args += [] if "-n" in args else ["-n", "-p"]
        result = subprocess.run(["snakemake", *args, "--directory", str(tmp_path / str(i))], cwd=REPO,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, command + "\n" + result.stdout[-3000:] + result.stderr[-3000:]
        outputs.append(result.stdout + result.stderr)
    # 8 GPUs (paper.yaml): torchrun, 32 videos a GPU of 256 = the whole batch at once
    assert re.search(r"torchrun --standalone --nproc_per_node 8 -m vmae pretrain .*optim.micro_batch_size=32", outputs[0])
    assert re.search(r"torchrun --standalone --nproc_per_node 8 -m vmae finetune .*optim.micro_batch_size=16", outputs[0])
    # the paper's UCF101 recipe on one GPU: no torchrun, the same micro-batches, so 8 micro-steps a step
    assert job_counts(outputs[1]) == {"prepare": 1, "pretrain": 1, "finetune": 1}
    assert "torchrun" not in outputs[1]
    pretrain = re.search(r"^.*vmae pretrain .*$", outputs[1], re.MULTILINE)[0]
    finetune = re.search(r"^.*vmae finetune .*$", outputs[1], re.MULTILINE)[0]
    assert "--epochs 3200" in pretrain and "mask_ratio=0.75" in pretrain and "optim.micro_batch_size=32" in pretrain
    assert "--epochs 100" in finetune and "optim.micro_batch_size=16" in finetune
    from vmae.config import FinetuneConfig, PretrainConfig, build_config
    from vmae.train.distributed import DistEnv, accumulation_steps

    for line, cls in ((pretrain, PretrainConfig), (finetune, FinetuneConfig)):
        args = shlex.split(line.split(" > ")[0])
        overrides = [a for a in args if "=" in a and not a.startswith("VMAE_") and not a.startswith("OMP_")]
        cfg = build_config(cls, args[args.index("--config") + 1], overrides)
        assert accumulation_steps(cfg.optim.batch_size, cfg.optim.micro_batch_size, DistEnv()) == 8
        assert accumulation_steps(cfg.optim.batch_size, cfg.optim.micro_batch_size, DistEnv(0, 8)) == 1


@pytest.mark.slow
def test_the_masking_regime_runs_on_demand_only_its_own_runs_each_with_its_budget(tmp_path):
    config = str(CONFIGS / "test.yaml")
    result = snakemake(tmp_path, "-n", "-p", "results/table_masking_regime.csv", "--configfile", config)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    # 3 settings x 2 lengths x 1 seed, from an empty results/: nothing of another study
    assert job_counts(out) == {"prepare_synthetic": 1, "frame_cache": 1, "pretrain": 6, "finetune": 6, "table": 1}
    budgets = dict(re.findall(r"vmae pretrain .*--out results/pretrain/videomae_tiny-clean_f1\.0_(\S+)_s0 "
                              r".* optim\.steps=([0-9]+) > ", out))
    # tube 0.5 at the FLOPs of tube 0.75's 2 and 4 steps (a 0.5 clip of the tiny model costs 1.86x)
    assert budgets == {"tube0.75_n2": "2", "tube0.75_n4": "4", "random0.75_n2": "2", "random0.75_n4": "4",
                       "tube0.5_n1": "1", "tube0.5_n2": "2"}
    default = snakemake(tmp_path, "-n", "--configfile", config)
    planned = default.stdout + default.stderr
    assert default.returncode == 0 and "table_masking_regime" not in planned and "_n2_s0" not in planned
    assert job_counts(default.stdout)["table"] == len(STUDIES)


def write_config(tmp_path: Path, change) -> Path:
    config = yaml.safe_load((CONFIGS / "test.yaml").read_text())
    change(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_bad_config_value_names_the_key(tmp_path):
    path = write_config(tmp_path, lambda c: c["studies"]["mask_ratio"].update(ratios=[1.5]))
    result = snakemake(tmp_path, "--dry-run", "--cores", "1", "--configfile", str(path))
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "1.5" in out and "config.yaml: studies.mask_ratio.ratios" in out


@pytest.mark.slow
def test_bad_dataset_spec_names_the_file_and_field(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(REPO / "tests" / "workflow" / "datasets", specs)
    bad = specs / "tiny-clean.yaml"
    bad.write_text(bad.read_text().replace("num_classes: 10", "num_classes: ten"))
    path = write_config(tmp_path, lambda c: c["datasets"].update(specs=str(specs)))
    result = snakemake(tmp_path, "--dry-run", "--cores", "1", "--configfile", str(path))
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "tiny-clean.yaml" in out and "num_classes" in out


@pytest.mark.slow
def test_full_run_of_the_test_config(tmp_path):
    config = str(CONFIGS / "test.yaml")
    # the main job first, and the README's report of it alone: claims, curves, table and figure of
    # the one study it ran, numbered from 1, saying which study it covers
    main = snakemake(tmp_path, "--cores", "2", "results/table_data_efficiency.csv", "--configfile", config, timeout=900)
    assert main.returncode == 0, main.stdout[-3000:] + main.stderr[-3000:]
    command = "snakemake --report results/report.html results/table_data_efficiency.csv"
    assert command in " ".join((REPO / "README.md").read_text().split())
    alone = snakemake(tmp_path, *shlex.split(command)[1:], "--configfile", config)
    assert alone.returncode == 0, alone.stderr[-3000:]
    html = (tmp_path / "results" / "report.html").read_text()
    assert "covers the studies whose tables it holds:\\ndata_efficiency." in html
    assert [c for c in ("1. Claims", "2. Training curves", "3. Tables", "4. Figures") if f'"{c}"' in html] == [
        "1. Claims", "2. Training curves", "3. Tables", "4. Figures"]
    result = snakemake(tmp_path, "--cores", "2", "--configfile", config, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = tmp_path / "results"
    common = ["n_seeds", "top1", "top1_ci_low", "top1_ci_high", "top1_std", "take_off", "top5", "pretrain_loss",
              "pretext_skill", "pretext_train_skill", "pretrain_steps", "pretrain_clips", "pretrain_flops", "pretrain_s", "eval_steps",
              "eval_flops", "eval_s", "seeds", "top1_by_seed", "paper_dataset", "paper_top1"]
    expected = {
        "data_efficiency": (["target", "train_videos", "method", "protocol"],
                            [("scratch", "finetune"), ("scratch", "linprobe"), ("mocov3", "finetune"),
                             ("mocov3", "linprobe"), ("videomae", "finetune"), ("videomae", "linprobe")]),
        "mask_ratio": (["target", "masking", "mask_ratio", "method", "protocol"], [0.5, 0.75]),
        "masking": (["target", "masking", "mask_ratio", "method", "protocol"], [("tube", 0.75), ("frame", 0.5)]),
        "domain_shift": (["source", "source_videos", "target", "method", "protocol"],
                         [("scratch", 0), ("tiny-clean", 20), ("tiny-clutter", 20)]),  # scratch: the control
        "data_size": (["target", "fraction", "pretrain_videos", "train_videos", "method", "protocol"],
                      [(0.5, 10), (1.0, 20)]),
        "methods": (["target", "train_videos", "method", "protocol"], ["videomae", "videomaev2"]),
    }
    for study, (leading, rows) in expected.items():
        table = pd.read_csv(results / f"table_{study}.csv")
        assert list(table.columns) == leading + common, study
        assert table["top1"].between(0, 100).all() and (table["n_seeds"] == 1).all(), study
        assert table[["top1_std", "top1_ci_low", "paper_top1"]].isna().all().all(), study  # one seed, synthetic
        assert not pd.read_csv(results / f"table_{study}_comparisons.csv").empty, study
        pretrained = table["method"] != "scratch"
        assert (table.loc[pretrained, "pretrain_steps"] > 0).all() and (table.loc[pretrained, "pretrain_s"] > 0).all()
        assert (table.loc[pretrained, "pretrain_flops"] > 0).all() and (table["eval_flops"] > 0).all()
        assert table.loc[table["method"] == "videomae", "pretext_skill"].notna().all(), study
        assert table.loc[table["method"] == "videomae", "pretext_train_skill"].notna().all(), study
        assert (table["top1_by_seed"] == "0:" + table["top1"].map("{:g}".format)).all(), study
        assert (results / f"table_{study}.md").is_file() and (results / "figures" / f"{study}.png").is_file()
        if study == "data_efficiency":
            assert list(zip(table["method"], table["protocol"])) == rows
            assert (table["train_videos"] == 20).all()
        elif study == "mask_ratio":
            assert table["mask_ratio"].tolist() == rows
        elif study == "masking":
            assert list(zip(table["masking"], table["mask_ratio"])) == rows
        elif study == "domain_shift":
            assert list(zip(table["source"], table["source_videos"])) == rows
        elif study == "methods":  # VideoMAE V2's dual masking beside VideoMAE, with its pretext skill
            assert table["method"].tolist() == rows and table["pretext_skill"].notna().all()
        else:
            assert list(zip(table["fraction"], table["pretrain_videos"])) == rows
    claims = pd.read_csv(results / "table_claims.csv")
    assert set(claims["claim"]) == set(studies.FAMILIES[studies.PAPER].keys)  # not the masking regime's
    assert not (results / "table_masking_regime.csv").exists()  # on demand only
    verdicts = dict(zip(claims["claim"], claims["verdict"]))
    # one seed: the gate and the control cannot decide, so the family behind the gate is not tested;
    # two set sizes are no trend, and 20 in-domain videos against 20 are no "small against large"
    assert {k for k, v in verdicts.items() if v == "inconclusive"} == {"videomae_gt_scratch", "in_domain_gt_scratch"}
    assert {k for k, v in verdicts.items() if v == "not tested: premise"} == {"more_data_helps",
                                                                             "in_domain_ge_out_of_domain"}
    assert {v for k, v in verdicts.items() if k not in ("videomae_gt_scratch", "in_domain_gt_scratch",
                                                        "more_data_helps", "in_domain_ge_out_of_domain")} == \
        {"not tested: gate"}
    assert "a graphical procedure (Bretz et al. 2009)" in (results / "table_claims.md").read_text()
    assert len(list((results / "figures" / "reconstruct").glob("videomae_*.png"))) == 5
    assert sorted(p.name for p in (results / "figures" / "samples").glob("*.png")) == ["tiny-clean.png",
                                                                                      "tiny-clutter.png"]
    report = snakemake(tmp_path, "--configfile", config, "--report", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 10_000
    again = snakemake(tmp_path, "--dry-run", "--cores", "2", "--configfile", config)
    assert "Nothing to be done" in again.stdout + again.stderr
