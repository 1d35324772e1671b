# The VideoMAE data-efficiency study as a DAG: prepare datasets, pretrain (VideoMAE, MoCo v3),
# evaluate (fine-tune, linear probe; scratch baselines), tables, figures and report.
# Every rule runs one `vmae` command; which runs exist is decided in workflow/rules/common.smk.
#
#   snakemake --cores all results/table_data_efficiency.csv      # the main table (default config)
#   snakemake --cores all                                        # every study but the on-demand ones
#   snakemake --cores all results/table_masking_regime.csv       # the masking regime (on demand)
#   snakemake --configfile workflow/config/paper.yaml --profile workflow/profiles/slurm
#   snakemake --report results/report.html


from snakemake.utils import min_version

from vmae.workflow_config import validate_config

min_version("9.0")


# The HTML report's first page (`snakemake --report results/report.html`): what the study is and
# what the report holds, in reading order.
report: "workflow/report/workflow.rst"


configfile: f"{workflow.basedir}/workflow/config/config.yaml"


# A config that `extends` another (rehearsal.yaml: paper.yaml) gets that file's values beneath its
# own: Snakemake merges the command line's --configfile back over every configfile read here.
if "extends" in config:

    configfile: f"{workflow.basedir}/{config['extends']}"


# Defaults filled as snakemake's validate does; an error is one line naming the config file and key.
validate_config(
    config,
    f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
    workflow.configfiles,
)


include: "workflow/rules/common.smk"


# Every dataset YAML the studies use, against workflow/schemas/dataset.schema.yaml (defaults
# filled; an error names the file and the field).
for spec_path in used_dataset_specs():
    load_spec(spec_path)


for rules_path in dataset_rule_files():

    include: rules_path


include: "workflow/rules/data.smk"
include: "workflow/rules/rehearsal.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        claims=multiext("results/table_claims", ".csv", ".md"),
        tables=expand(
            "results/table_{study}.{ext}", study=DEFAULT_STUDIES, ext=["csv", "md"]
        ),
        figures=expand("results/figures/{study}.png", study=DEFAULT_STUDIES),
        curves=expand("results/figures/{study}_curves.png", study=DEFAULT_STUDIES),
        reconstructions=reconstruction_pictures(),
        samples=expand("results/figures/samples/{dataset}.png", dataset=used_datasets()),
