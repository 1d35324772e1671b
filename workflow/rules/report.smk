# Tables (CSV + Markdown, the paper's numbers beside ours, paired comparisons, the paper's claims
# with verdicts) and figures, built only from the metrics.json files of each study's runs.


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
        comparisons="results/table_{study}_comparisons.csv",
        claims="results/table_{study}_claims.csv",
    log:
        "results/logs/table/{study}.log",
    conda:
        CONDA_ENV
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    params:
        specs=repo_path(config["datasets"]["specs"]),
    shell:
        "vmae table {wildcards.study:q} {input.metrics:q} --paper {input.paper:q}"
        " --datasets {params.specs:q} --out {output.csv:q} > {log:q} 2>&1"


rule claims:
    input:
        expand("results/table_{study}_claims.csv", study=STUDIES),
    output:
        csv=report(
            "results/table_claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
        md="results/table_claims.md",
    log:
        "results/logs/table/claims.log",
    conda:
        CONDA_ENV
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        "vmae claims {input:q} --out {output.csv:q} > {log:q} 2>&1"


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
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        "vmae plot {wildcards.study:q} --table {input.table:q} --out {output:q} > {log:q} 2>&1"
