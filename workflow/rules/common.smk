# Config -> run table: which datasets, pretraining runs and evaluations each study needs, and the
# small helpers that wire rules to `vmae` commands. Run names come from vmae.report.runs only.

import os
import re
import shlex
from pathlib import Path

from vmae import methods, recipes
from vmae.config import ModelConfig
from vmae.data.registry import load_spec
from vmae.report import runs, studies

REPO = Path(workflow.basedir)
STUDIES = list(studies.STUDY_NAMES)  # every study: a table the workflow can build
# The studies of the default target and of the all-claims table; an on-demand study (the masking
# regime) runs only when its table is asked for.
DEFAULT_STUDIES = list(studies.DEFAULT_STUDIES)
CONDA_ENV = str(REPO / "workflow" / "envs" / "vmae.yaml")


wildcard_constraints:
    dataset=runs.DATASET_PATTERN,
    target=runs.DATASET_PATTERN,
    run=runs.PRETRAIN_WILDCARD,
    init=runs.INIT_WILDCARD,
    study="|".join(STUDIES),
    fraction=r"[0-9]+\.[0-9]+",
    seed=r"[0-9]+",


# --------------------------------------------------------------------------- paths


def repo_path(path):
    """A config path relative to the repository root (or absolute), usable from the workdir."""
    if os.path.isabs(path) or Path.cwd().resolve() == REPO.resolve():
        return str(path)
    return str(REPO / path)


def spec_file(dataset):
    """datasets/<name>.yaml of a dataset (the config's datasets.specs folder)."""
    return repo_path(f"{config['datasets']['specs']}/{dataset}.yaml")


def data_dir(dataset):
    """The prepared folder of a dataset (train.csv, val.csv, classes.txt, dataset.json)."""
    return config["datasets"]["dirs"].get(dataset, f"results/data/{dataset}")


def train_manifest(dataset, fraction, seed):
    """The full training manifest, or its nested stratified subset written by `vmae subset`."""
    if fraction == 1.0:
        return f"{data_dir(dataset)}/train.csv"
    return (
        f"results/data/{dataset}/train_frac{runs.format_number(fraction)}_s{seed}.csv"
    )


def subset_input(wildcards):
    """The training manifest a subset is drawn from, and the unlabelled pool above fraction 1."""
    folder = data_dir(wildcards.dataset)
    files = {"train": f"{folder}/train.csv"}
    if float(wildcards.fraction) > 1:
        files["pool"] = f"{folder}/unlabelled.csv"
    return files


def pool_arg(wildcards, input):
    """` --pool <unlabelled.csv>` (shell-quoted) above fraction 1, or nothing."""
    return f" --pool {shlex.quote(input.pool)}" if "pool" in input.keys() else ""


def dataset_rule_files():
    """Optional <specs>/<name>.smk rules that prepare an unusual dataset themselves."""
    return sorted(
        str(p) for p in Path(repo_path(config["datasets"]["specs"])).glob("*.smk")
    )


def synthetic_datasets():
    """The names of the synthetic datasets in the specs folder (prepared with a test split)."""
    folder = Path(repo_path(config["datasets"]["specs"]))
    return [
        p.stem
        for p in sorted(folder.glob("*.yaml"))
        if load_spec(p).source["kind"] == "synthetic"
    ]


def _names_pattern(names):
    return "|".join(map(re.escape, names)) if names else r"(?!)"  # (?!) matches nothing


def generic_prepare_pattern():
    """The datasets of the generic `prepare` rule: all but the synthetic ones (`prepare_synthetic`)
    and those with their own .smk file."""
    excluded = [Path(p).stem for p in dataset_rule_files()] + synthetic_datasets()
    if not excluded:
        return runs.DATASET_PATTERN
    # not one of those names followed by the end of the name (a `$` would look past the wildcard)
    return rf"(?!(?:{_names_pattern(excluded)})(?![a-z0-9_-])){runs.DATASET_PATTERN}"


def synthetic_prepare_pattern():
    """The datasets of `prepare_synthetic`: the synthetic ones without their own .smk file."""
    custom = {Path(p).stem for p in dataset_rule_files()}
    return _names_pattern([name for name in synthetic_datasets() if name not in custom])


def sources_input(wildcards):
    """The `datasets.sources` file (a mirror's URLs and checksums) as an input of a real dataset's
    preparation, when the config names one."""
    path = config["datasets"].get("sources")
    if path is None or wildcards.dataset in synthetic_datasets():
        return {}
    return {"sources": path}


def sources_arg(wildcards, input):
    """` --sources <file>` (shell-quoted), or nothing."""
    return (
        f" --sources {shlex.quote(input.sources)}" if "sources" in input.keys() else ""
    )


def raw_arg(wildcards):
    """`--raw <raw>/<name>` (shell-quoted) for real datasets (download or manual placement); none
    for synthetic."""
    if wildcards.dataset in synthetic_datasets():
        return ""
    raw = f"{config['datasets']['raw']}/{wildcards.dataset}"
    return f"--raw {shlex.quote(raw)}"


# --------------------------------------------------------------------------- run table


def study_seeds(study):
    return config["studies"][study].get("seeds", config["seeds"])


def study_evals(study):
    """Every evaluation (target, protocol, seed, init) the study's table needs."""
    s = config["studies"][study]
    evals = {
        runs.EvalRun(target, protocol, seed, init)
        for target, seed, init in studies.evaluations(
            study, s, study_seeds(study), config["model"]
        )
        for protocol in s["protocols"]
    }
    return sorted(evals, key=lambda e: e.path())


def study_metrics(study):
    """metrics.json of the study's evaluations and of the pretraining runs they start from."""
    evals = study_evals(study)
    pretrains = sorted({e.init.name for e in evals if e.init is not None})
    return [f"{e.path()}/metrics.json" for e in evals] + [
        f"results/pretrain/{name}/metrics.json" for name in pretrains
    ]


def all_pretrain_runs():
    """The pretraining runs of the default studies."""
    return sorted(
        {
            e.init
            for study in DEFAULT_STUDIES
            for e in study_evals(study)
            if e.init is not None
        },
        key=lambda r: r.name,
    )


def reconstructing_methods():
    """The {run} wildcard of `reconstruct`: runs of a method that reconstructs (vmae.methods)."""
    names = [name for name in methods.names() if methods.get(name).reconstructs]
    return rf"(?:{'|'.join(names) or '(?!)'})_.*"


def reconstruction_pictures():
    """One reconstruction picture per setting (method, source, set size, masking) of a method that
    reconstructs (vmae.methods: VideoMAE), of its first seed."""
    first = {}
    for run in sorted(all_pretrain_runs(), key=lambda r: r.seed):
        if methods.get(run.method).reconstructs:
            first.setdefault(
                (run.method, run.source, run.fraction, run.masking, run.mask_ratio), run
            )
    return [
        f"results/figures/reconstruct/{r.name}.png"
        for r in sorted(first.values(), key=lambda r: r.name)
    ]


def used_datasets():
    """Every dataset a default study pretrains or evaluates on."""
    names = {e.target for study in DEFAULT_STUDIES for e in study_evals(study)}
    names |= {r.source for r in all_pretrain_runs()}
    return sorted(names)


def used_dataset_specs():
    return [spec_file(name) for name in used_datasets()]


# --------------------------------------------------------------------------- commands


def job_threads(kind):
    """CPU threads of a kind of job (config `resources.<kind>.threads`; defaults: the schema's)."""
    return config["resources"][kind]["threads"]


def job_resources(kind):
    """gpu / mem_mb / runtime of a kind of job, for a rule's `resources: **job_resources(kind)`."""
    return {key: config["resources"][kind][key] for key in ("gpu", "mem_mb", "runtime")}


def launcher(wildcards, resources):
    """`vmae`, or `torchrun ... -m vmae` for a job holding more than one GPU."""
    if resources.gpu > 1:
        gpus = int(resources.gpu)  # a number: nothing to quote
        return f"torchrun --standalone --nproc_per_node {gpus} -m vmae"
    return "vmae"


def recipe(kind, dataset):
    """The recipe of a method / protocol for one dataset (``vmae.recipes.recipe``), its config file
    usable from the workdir."""
    found = recipes.recipe(config, kind, dataset)
    return {
        "config": repo_path(found.config),
        "epochs": found.epochs,
        "overrides": found.overrides,
    }


def overrides(items):
    """key=value arguments, shell-quoted."""
    return " ".join(shlex.quote(item) for item in items)


def model_overrides():
    return recipes.model_overrides(config)


def pretrain_of(wildcards):
    return runs.parse_pretrain(wildcards.run)


def pretrain_recipe(wildcards):
    run = pretrain_of(wildcards)
    return recipe(run.method, run.source)


def frame_cache_dir(dataset):
    return f"results/cache/{dataset}"


def frame_cache_input(dataset):
    """The frame cache's index as an input, when `datasets.frame_cache` is on."""
    if config["datasets"].get("frame_cache", False):
        return {"frame_cache": f"{frame_cache_dir(dataset)}/index.json"}
    return {}


def cache_manifests(wildcards):
    """The splits a synthetic dataset has beyond train and val (test, the unlabelled pool), cached
    too: its evaluations and larger pretraining sets read them."""
    if wildcards.dataset not in synthetic_datasets():
        return {}
    folder = data_dir(wildcards.dataset)
    return {"test": f"{folder}/test.csv", "unlabelled": f"{folder}/unlabelled.csv"}


def manifest_args(wildcards, input):
    """` --manifest <csv>` (shell-quoted) for each extra split of ``cache_manifests``."""
    return "".join(
        f" --manifest {shlex.quote(input[name])}"
        for name in ("test", "unlabelled")
        if name in input.keys()
    )


def frame_cache_override(dataset):
    if config["datasets"].get("frame_cache", False):
        return [f"data.frame_cache={frame_cache_dir(dataset)}"]
    return []


def pretrain_input(wildcards):
    run = pretrain_of(wildcards)
    return {
        "info": f"{data_dir(run.source)}/dataset.json",
        "manifest": train_manifest(run.source, run.fraction, run.seed),
        "heldout": f"{data_dir(run.source)}/val.csv",  # the pretext measure is taken on it
        "recipe": pretrain_recipe(wildcards)["config"],
        **frame_cache_input(run.source),
    }


def pretrain_overrides(wildcards):
    run = pretrain_of(wildcards)
    masking = []
    if run.masking is not None:  # a masked method's run (vmae.report.runs)
        masking = [f"masking={run.masking}", f"mask_ratio={run.mask_ratio}"]
    budget = (
        [] if run.steps is None else [f"optim.steps={run.steps}"]
    )  # the run's own, after the recipe's
    return overrides(
        model_overrides()
        + masking
        + frame_cache_override(run.source)
        + pretrain_recipe(wildcards)["overrides"]
        + budget
    )


def eval_of(wildcards, protocol):
    init, seed = runs.parse_init(wildcards.init)
    return runs.EvalRun(wildcards.target, protocol, seed, init)


def eval_input(protocol):
    """Input function of an evaluation rule: target data, recipe and the init checkpoint."""

    def inputs(wildcards):
        run = eval_of(wildcards, protocol)
        files = {
            "info": f"{data_dir(run.target)}/dataset.json",
            "train": f"{data_dir(run.target)}/train.csv",
            "eval": f"{data_dir(run.target)}/{report_split(run.target)}.csv",
            "recipe": recipe(protocol, run.target)["config"],
            **frame_cache_input(run.target),
        }
        if run.init is not None:
            files["init"] = f"results/pretrain/{run.init.name}/checkpoint.pt"
        return files

    return inputs


def report_split(dataset):
    """The split evaluations score: `datasets.report_split` (val in a pilot), else the dataset's own."""
    return (
        config["datasets"].get("report_split")
        or load_spec(spec_file(dataset)).report_split
    )


def init_arg(wildcards, input):
    """`--init <checkpoint>` (shell-quoted), or nothing for a from-scratch evaluation."""
    return f"--init {shlex.quote(str(input.init))}" if "init" in input.keys() else ""


def eval_overrides(protocol):
    def args(wildcards):
        run = eval_of(wildcards, protocol)
        return overrides(
            model_overrides()
            + frame_cache_override(run.target)
            + recipe(protocol, run.target)["overrides"]
        )

    return args
