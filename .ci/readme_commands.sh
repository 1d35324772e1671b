#!/usr/bin/env bash
# The README's commands other than the tests, as a user runs them after the README's own install
# (issue 25, item 2): a fresh virtual environment with `pip install -e .` (no extras, nothing of the
# test environment), a fresh working copy of this checkout (no results/, no mirror), and there:
#   vmae --help
#   snakemake --cores all --configfile workflow/config/rehearsal.yaml     # the real run, from nothing
#   snakemake --report results/report.html                                # on the rehearsal's results
# (the report of the rehearsal's config, so `--configfile workflow/config/rehearsal.yaml` follows).
# About 2-3 minutes of install (the PyPI torch wheel) and a few minutes of rehearsal on 2 cores.
#
# Environment: VMAE_BASE_VENV (default /tmp/vmae-base, made afresh), KEEP_WORK=1 keeps the working
# copy (its path is printed), TORCH_INDEX_URL installs torch / torchvision from that index first
# (e.g. https://download.pytorch.org/whl/cpu, the CPU-only route of docs/install.md).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VMAE_BASE_VENV:-/tmp/vmae-base}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vmae-readme.XXXXXX")"
cleanup() { if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
step() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

# A fresh working copy: the files git tracks or would track (a clone of this commit in CI; local
# edits included when run by hand), none of the ignored ones (results/, *.egg-info, caches).
step "working copy $WORK/vmae"
mkdir "$WORK/vmae"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | tar -C "$REPO" --null --ignore-failed-read -T - -cf - | tar -C "$WORK/vmae" -xf -

step "python -m venv $VENV && pip install -e . (the base install, no extras)"
python -m venv --clear "$VENV"
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "$VENV/bin/python" -m pip install -q torch torchvision --index-url "$TORCH_INDEX_URL"
fi
(cd "$WORK/vmae" && "$VENV/bin/python" -m pip install -q -e .)

# Only the venv's programs and packages from here on.
export PATH="$VENV/bin:$PATH"
export PYTHONNOUSERSITE=1
unset PYTHONPATH VIRTUAL_ENV
cd "$WORK/vmae"
[ "$(command -v snakemake)" = "$VENV/bin/snakemake" ] && [ "$(command -v vmae)" = "$VENV/bin/vmae" ]

step "vmae --help"
vmae --help >/dev/null

step "snakemake --cores all --configfile workflow/config/rehearsal.yaml"
start=$SECONDS
snakemake --cores all --configfile workflow/config/rehearsal.yaml
echo "rehearsal: $((SECONDS - start)) s"
for f in results/mirror/sources.yaml results/table_claims.csv results/table_data_efficiency.csv; do
    [ -s "$f" ] || { echo "error: the rehearsal did not write $f" >&2; exit 1; }
done
grep -q "^  - url: file:///.*/results/mirror/UCF101.rar$" results/mirror/sources.yaml  # no server

step "snakemake --report results/report.html (the rehearsal's)"
snakemake --report results/report.html --configfile workflow/config/rehearsal.yaml
[ -s results/report.html ] || { echo "error: no results/report.html" >&2; exit 1; }
echo "README commands: all ran"
