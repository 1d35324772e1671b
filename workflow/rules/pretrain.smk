# Self-supervised pretraining (a registered method, vmae.methods) and VideoMAE reconstruction pictures.
# A run's name says what it is (vmae.report.runs): e.g. videomae_synthetic-clean_f1.0_tube0.9_s0.
# A killed or pre-empted job resumes when rerun: training writes its state every epoch to
# <run>/resume.pt, which is not an output (Snakemake deletes a rerun job's outputs first), and
# renames it to the output checkpoint.pt when the last epoch is done (vmae.train.loop). A finished
# run leaves no resume.pt, so a rerun for changed inputs starts afresh; a changed config refuses a
# resume.pt it did not write (delete it to start over).


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
    threads: job_threads("pretrain")
    resources:
        **job_resources("pretrain"),
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
        "{params.launcher} pretrain --data {params.data:q} --out {params.out:q}"
        " --train-manifest {input.manifest:q} --eval-manifest {input.heldout:q} --method {params.method:q}"
        " --epochs {params.epochs:q} --seed {params.seed:q} --config {input.recipe:q}"
        " {params.overrides} > {log:q} 2>&1"


rule reconstruct:
    input:
        checkpoint="results/pretrain/{run}/checkpoint.pt",
        val=lambda wildcards: f"{data_dir(pretrain_of(wildcards).source)}/val.csv",
    output:
        report(
            "results/figures/reconstruct/{run}.png",
            caption="../report/reconstruct.rst",
            category="5. Reconstructions",
        ),
    log:
        "results/logs/reconstruct/{run}.log",
    wildcard_constraints:
        run=reconstructing_methods(),
    conda:
        CONDA_ENV
    threads: job_threads("reconstruct")
    resources:
        **job_resources("reconstruct"),
    params:
        data=lambda wildcards: data_dir(pretrain_of(wildcards).source),
        masking=lambda wildcards: pretrain_of(wildcards).masking,
        mask_ratio=lambda wildcards: pretrain_of(wildcards).mask_ratio,
    shell:
        "export VMAE_THREADS={threads} OMP_NUM_THREADS={threads}; "
        "vmae reconstruct --init {input.checkpoint:q} --data {params.data:q} --out {output:q}"
        " --mask-ratio {params.mask_ratio:q} --masking {params.masking:q} > {log:q} 2>&1"
