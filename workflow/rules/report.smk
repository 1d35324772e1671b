# Tables (CSV + Markdown, the paper's numbers beside ours) and figures, built only from the
# metrics.json files of each study's runs.


rule table:
    input:
        metrics=lambda wildcards: study_metrics(wildcards.study),
        paper=str(REPO / "vmae" / "report" / "paper.csv"),
    output:
        csv=report(
            "results/table_{study}.csv",
            caption="../report/table.rst",
            category="Tables",
        ),
        md="results/table_{study}.md",
    log:
        "results/logs/table/{study}.log",
    conda:
        CONDA_ENV
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
        runtime=resource("light", "runtime"),
    params:
        specs=repo_path(config["datasets"]["specs"]),
    shell:
        "vmae table {wildcards.study} {input.metrics} --paper {input.paper}"
        " --datasets {params.specs} --out {output.csv} > {log} 2>&1"


rule plot:
    input:
        table="results/table_{study}.csv",
    output:
        report(
            "results/figures/{study}.png",
            caption="../report/figure.rst",
            category="Figures",
        ),
    log:
        "results/logs/plot/{study}.log",
    conda:
        CONDA_ENV
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
        runtime=resource("light", "runtime"),
    shell:
        "vmae plot {wildcards.study} --table {input.table} --out {output} > {log} 2>&1"
