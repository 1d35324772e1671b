# Evaluation of an initialisation (a pretraining run or scratch) on a target dataset:
# results/eval/<target>/<finetune|linprobe>/<init run or scratch_s<seed>>/metrics.json.
# The evaluation's seed is its init run's seed. Checkpoints and feature caches are outputs too,
# so a rerun (e.g. after its init was pretrained again) starts clean instead of reusing them; a
# killed fine-tuning resumes from its resume.pt, which is not an output (see pretrain.smk).


rule finetune:
    input:
        unpack(eval_input("finetune")),
    output:
        metrics="results/eval/{target}/finetune/{init}/metrics.json",
        predictions="results/eval/{target}/finetune/{init}/predictions.csv",
        checkpoint="results/eval/{target}/finetune/{init}/checkpoint.pt",
    log:
        "results/logs/finetune/{target}/{init}.log",
    benchmark:
        "results/benchmarks/finetune/{target}/{init}.tsv"
    conda:
        CONDA_ENV
    threads: job_threads("finetune")
    resources:
        **job_resources("finetune"),
    params:
        launcher=launcher,
        out=subpath(output.metrics, parent=True),
        data=lambda wildcards: data_dir(wildcards.target),
        init=init_arg,
        seed=lambda wildcards: eval_of(wildcards, "finetune").seed,
        epochs=lambda wildcards: recipe("finetune", wildcards.target)["epochs"],
        overrides=eval_overrides("finetune"),
    shell:
        "export VMAE_THREADS={threads} OMP_NUM_THREADS={threads}; "
        "{params.launcher} finetune --data {params.data:q} --out {params.out:q} {params.init}"
        " --train-manifest {input.train:q} --eval-manifest {input.eval:q} --epochs {params.epochs:q} --seed {params.seed:q}"
        " --config {input.recipe:q} {params.overrides} > {log:q} 2>&1"


rule linprobe:
    input:
        unpack(eval_input("linprobe")),
    output:
        metrics="results/eval/{target}/linprobe/{init}/metrics.json",
        predictions="results/eval/{target}/linprobe/{init}/predictions.csv",
        features="results/eval/{target}/linprobe/{init}/features.npz",
    log:
        "results/logs/linprobe/{target}/{init}.log",
    benchmark:
        "results/benchmarks/linprobe/{target}/{init}.tsv"
    conda:
        CONDA_ENV
    threads: job_threads("linprobe")
    resources:
        **job_resources("linprobe"),
    params:
        launcher=launcher,
        out=subpath(output.metrics, parent=True),
        data=lambda wildcards: data_dir(wildcards.target),
        init=init_arg,
        seed=lambda wildcards: eval_of(wildcards, "linprobe").seed,
        overrides=eval_overrides("linprobe"),
    shell:
        "export VMAE_THREADS={threads} OMP_NUM_THREADS={threads}; "
        "{params.launcher} linprobe --data {params.data:q} --out {params.out:q} {params.init}"
        " --train-manifest {input.train:q} --eval-manifest {input.eval:q} --seed {params.seed:q}"
        " --config {input.recipe:q} {params.overrides} > {log:q} 2>&1"
