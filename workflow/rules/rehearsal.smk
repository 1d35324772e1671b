# The rehearsal's stand-in data (workflow/config/rehearsal.yaml sets datasets.mirror: true):
# `vmae mirror` places SSv2 / K400 files under <raw>/ (a note in each folder), builds UCF101 / HMDB51
# archives in the official names and layouts in the folder of datasets.sources (results/mirror/), and
# writes that file last (the archives' file:// URLs and checksums). Every real dataset's prepare job
# takes datasets.sources as input, so all four wait for this job.

from vmae.rehearsal.layout import workflow_outputs

if config["datasets"]["mirror"]:
    MIRROR = workflow_outputs(config["datasets"])

    rule mirror:
        output:
            ssv2=MIRROR["placed"]["ssv2"],
            k400=MIRROR["placed"]["k400"],
            archives=MIRROR["archives"],
            sources=MIRROR["sources"],
        log:
            "results/logs/mirror.log",
        conda:
            CONDA_ENV
        threads: job_threads("light")
        resources:
            **job_resources("light"),
        params:
            folder=subpath(output.sources, parent=True),
            raw=subpath(output.ssv2, ancestor=2),
        shell:
            "vmae mirror --out {params.folder:q} --raw {params.raw:q} > {log:q} 2>&1"
