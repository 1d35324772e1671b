"""The rehearsal's stand-in data: a mirror of UCF101 / HMDB51 in the official archive names and
layouts, and Something-Something V2 / Kinetics-400 files as a user places them, all holding small
real encoded videos of a few classes, so that ``workflow/config/rehearsal.yaml`` runs the paper's
whole DAG (download, verify, unpack RARs, prepare four datasets, train, report) on a laptop.

``vmae mirror --out mirror --raw results/raw`` builds it (``vmae.rehearsal.mirror``); the workflow's
rule ``mirror`` (workflow/rules/rehearsal.smk) runs that command when the config says
``datasets.mirror: true``. Modules: ``official`` (class names and file names as the datasets write
them), ``rar4`` (a stored-RAR 4 writer), ``media`` (the small videos), ``archives`` (UCF101 /
HMDB51), ``placed`` (SSv2 / K400), ``mirror`` (the sources file and the command).
"""
