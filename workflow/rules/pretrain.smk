# Self-supervised pretraining (VideoMAE or MoCo v3) and VideoMAE reconstruction pictures.
# A run's name says what it is (vmae.report.runs): e.g. videomae_synthetic-clean_f1.0_tube0.9_s0.
# Snakemake deletes a rerun job's outputs first, so a changed config or dataset never resumes a
# stale checkpoint; `vmae pretrain` run by hand on the same --out resumes after a kill.


rule pretrain:
    input:
        unpack(pretrain_input),
    output:
        checkpoint="results/pretrain/{run}/checkpoint.pt",
        metrics="results/pretrain/{run}/metrics.json",
    log:
        "results/logs/pretrain/{run}.log",
    benchmark:
        "results/benchmarks/pretrain/{run}.tsv"
    conda:
        CONDA_ENV
    threads: resource("pretrain", "threads")
    resources:
        gpu=resource("pretrain", "gpu"),
        mem_mb=resource("pretrain", "mem_mb"),
        runtime=resource("pretrain", "runtime"),
    params:
        launcher=launcher,
        out=subpath(output.metrics, parent=True),
        data=lambda wildcards: data_dir(pretrain_of(wildcards).source),
        method=lambda wildcards: pretrain_of(wildcards).method,
        seed=lambda wildcards: pretrain_of(wildcards).seed,
        epochs=lambda wildcards: pretrain_recipe(wildcards)["epochs"],
        overrides=pretrain_overrides,
    shell:
        "export VMAE_THREADS={threads} OMP_NUM_THREADS={threads}; "
        "{params.launcher} pretrain --data {params.data} --out {params.out}"
        " --train-manifest {input.manifest} --method {params.method}"
        " --epochs {params.epochs} --seed {params.seed} --config {input.recipe}"
        " {params.overrides} > {log} 2>&1"


rule reconstruct:
    input:
        checkpoint="results/pretrain/{run}/checkpoint.pt",
        val=lambda wildcards: f"{data_dir(pretrain_of(wildcards).source)}/val.csv",
    output:
        report(
            "results/figures/reconstruct/{run}.png",
            caption="../report/reconstruct.rst",
            category="Reconstructions",
        ),
    log:
        "results/logs/reconstruct/{run}.log",
    wildcard_constraints:
        run="videomae_.*",
    conda:
        CONDA_ENV
    threads: resource("reconstruct", "threads")
    resources:
        gpu=resource("reconstruct", "gpu"),
        mem_mb=resource("reconstruct", "mem_mb"),
        runtime=resource("reconstruct", "runtime"),
    params:
        data=lambda wildcards: data_dir(pretrain_of(wildcards).source),
        masking=lambda wildcards: pretrain_of(wildcards).masking,
        mask_ratio=lambda wildcards: pretrain_of(wildcards).mask_ratio,
    shell:
        "export VMAE_THREADS={threads} OMP_NUM_THREADS={threads}; "
        "vmae reconstruct --init {input.checkpoint} --data {params.data} --out {output}"
        " --mask-ratio {params.mask_ratio} --masking {params.masking} > {log} 2>&1"
