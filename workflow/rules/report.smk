# Tables (CSV + Markdown, the paper's numbers beside ours, paired comparisons, the paper's claims
# with verdicts), figures and training curves, built only from the files of each study's runs. A
# study's figure and training curves are drawn by the job that writes its table, so every table
# comes with both, and a report of the main job alone has its claims, curves, table and figure.
# Report categories are numbered: the HTML report lists them sorted by name, so the numbers set the
# reading order (claims first, then the training curves); workflow/report/workflow.rst describes them.


# The log.jsonl beside each metrics.json is read (the curves), not declared: it is written by the same
# job, and as an output Snakemake would delete it before a killed job's rerun, which resumes (vmae.train.loop).
rule table:
    input:
        metrics=lambda wildcards: study_metrics(wildcards.study),
        paper=str(REPO / "vmae" / "report" / "paper.csv"),
    output:
        csv=report(
            "results/table_{study}.csv",
            caption="../report/table.rst",
            category="3. Tables",
            subcategory="{study}",
        ),
        md=report(
            "results/table_{study}.md",
            caption="../report/table_md.rst",
            category="3. Tables",
            subcategory="{study}",
        ),
        comparisons=report(
            "results/table_{study}_comparisons.csv",
            caption="../report/comparisons.rst",
            category="3. Tables",
            subcategory="{study}",
        ),
        claims=report(
            "results/table_{study}_claims.csv",
            caption="../report/study_claims.rst",
            category="1. Claims",
            subcategory="{study}",
        ),
        figure=report(
            "results/figures/{study}.png",
            caption="../report/figure.rst",
            category="4. Figures",
        ),
        curves=report(
            "results/figures/{study}_curves.png",
            caption="../report/curves.rst",
            category="2. Training curves",
        ),
    log:
        "results/logs/table/{study}.log",
    conda:
        CONDA_ENV
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    params:
        specs=repo_path(config["datasets"]["specs"]),
        title=lambda wildcards: f"{studies.STUDIES[wildcards.study].title}: training curves",
    shell:
        "vmae table {wildcards.study:q} {input.metrics:q} --paper {input.paper:q}"
        " --datasets {params.specs:q} --out {output.csv:q} > {log:q} 2>&1"
        " && vmae plot {wildcards.study:q} --table {output.csv:q} --out {output.figure:q} >> {log:q} 2>&1"
        " && vmae curves {input.metrics:q} --title {params.title:q} --out {output.curves:q} >> {log:q} 2>&1"


rule claims:
    input:
        expand("results/table_{study}_claims.csv", study=DEFAULT_STUDIES),
    output:
        csv=report(
            "results/table_claims.csv",
            caption="../report/claims.rst",
            category="1. Claims",
            subcategory="all studies",
        ),
        md=report(
            "results/table_claims.md",
            caption="../report/claims_md.rst",
            category="1. Claims",
            subcategory="all studies",
        ),
    log:
        "results/logs/table/claims.log",
    conda:
        CONDA_ENV
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        "vmae claims {input:q} --out {output.csv:q} > {log:q} 2>&1"
