#!/usr/bin/env bash
# Install this repository's `vmae` package (no dependencies: the environment has them) into the
# freshly created conda environment. Snakemake runs this from the workflow's working directory;
# VMAE_REPO overrides the repository location when the workdir is elsewhere.
set -euo pipefail
pip install --no-deps -e "${VMAE_REPO:-.}"
