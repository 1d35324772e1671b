# Datasets: prepare (generate / download / check manual placement, write manifests), nested
# training subsets, and a picture of sample clips per dataset.


rule prepare:
    input:
        unpack(sources_input),
        spec=lambda wildcards: spec_file(wildcards.dataset),
    output:
        train="results/data/{dataset}/train.csv",
        val="results/data/{dataset}/val.csv",
        classes="results/data/{dataset}/classes.txt",
        info="results/data/{dataset}/dataset.json",
    log:
        "results/logs/prepare/{dataset}.log",
    wildcard_constraints:
        dataset=generic_prepare_pattern(),
    conda:
        CONDA_ENV
    threads: job_threads("prepare")
    resources:
        **job_resources("prepare"),
    params:
        out=subpath(output.info, parent=True),
        raw=raw_arg,
        sources=sources_arg,
    shell:
        "vmae prepare {input.spec:q} --out {params.out:q} {params.raw}{params.sources}"
        " --workers {threads}"
        " > {log:q} 2>&1"


# Synthetic data also has a test split (settings are chosen on val, every reported number is on
# test) and an unlabelled pool that pretraining sets larger than the training set draw from.
use rule prepare as prepare_synthetic with:
    output:
        train="results/data/{dataset}/train.csv",
        val="results/data/{dataset}/val.csv",
        test="results/data/{dataset}/test.csv",
        unlabelled="results/data/{dataset}/unlabelled.csv",
        classes="results/data/{dataset}/classes.txt",
        info="results/data/{dataset}/dataset.json",
    wildcard_constraints:
        dataset=synthetic_prepare_pattern(),


rule frame_cache:
    input:
        unpack(cache_manifests),
        info=lambda wildcards: f"{data_dir(wildcards.dataset)}/dataset.json",
        train=lambda wildcards: f"{data_dir(wildcards.dataset)}/train.csv",
        val=lambda wildcards: f"{data_dir(wildcards.dataset)}/val.csv",
    output:
        "results/cache/{dataset}/index.json",
    log:
        "results/logs/frame_cache/{dataset}.log",
    conda:
        CONDA_ENV
    threads: job_threads("prepare")
    resources:
        **job_resources("prepare"),
    params:
        data=lambda wildcards: data_dir(wildcards.dataset),
        out=subpath(output[0], parent=True),
        size=config["model"].get("img_size", ModelConfig.img_size),
        manifests=manifest_args,
    shell:
        "vmae cache {params.data:q} --out {params.out:q} --size {params.size:q}{params.manifests}"
        " --workers {threads} > {log:q} 2>&1"


# A pretraining set of `fraction` times the training set: a nested stratified subset of it, or above
# 1 the whole of it plus nested videos of the dataset's unlabelled pool.
rule subset:
    input:
        unpack(subset_input),
    output:
        "results/data/{dataset}/train_frac{fraction}_s{seed}.csv",
    log:
        "results/logs/subset/{dataset}_frac{fraction}_s{seed}.log",
    conda:
        CONDA_ENV
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    params:
        pool=pool_arg,
    shell:
        "vmae subset {input.train:q} --fraction {wildcards.fraction:q} --seed {wildcards.seed:q}"
        "{params.pool} --out {output:q} > {log:q} 2>&1"


rule show:
    input:
        info=lambda wildcards: f"{data_dir(wildcards.dataset)}/dataset.json",
        val=lambda wildcards: f"{data_dir(wildcards.dataset)}/val.csv",
    output:
        report(
            "results/figures/samples/{dataset}.png",
            caption="../report/samples.rst",
            category="6. Datasets",
        ),
    log:
        "results/logs/show/{dataset}.log",
    conda:
        CONDA_ENV
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    params:
        data=lambda wildcards: data_dir(wildcards.dataset),
    shell:
        "vmae show {params.data:q} --out {output:q} --per-class 1 > {log:q} 2>&1"
