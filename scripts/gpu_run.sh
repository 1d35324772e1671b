#!/bin/bash
# On the GPU machine, with .whl/ (and .official/) from scripts/gpu_prepare.sh carried beside the
# project: installs the wheels into /tmp/site (nothing of the machine's own packages changes), then
# runs one part of scripts/bench_gpu.sh into OUT_DIR and records the commit it measured
# (VMAE_COMMIT where the copy there has no .git: give it the commit's hash).
#   usage: [VMAE_COMMIT=HASH] scripts/gpu_run.sh model|data|memory|all OUT_DIR
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: scripts/gpu_run.sh model|data|memory|all OUT_DIR}
out=${2:?usage: scripts/gpu_run.sh model|data|memory|all OUT_DIR}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "error: the wheels in .whl/ did not install (run scripts/gpu_prepare.sh first)" >&2; exit 1; }
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
echo "${VMAE_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}" >"$out/commit.txt"
python3 -c "import torch, timm, decord, av, jsonschema; print('torch', torch.__version__, 'timm', timm.__version__, 'decord', decord.__version__, 'av', av.__version__)" \
    | tee "$out/versions.txt"
official=""
[ -f .official/modeling_pretrain.py ] && official=.official
BENCH_PART=$part scripts/bench_gpu.sh "$out" $official
