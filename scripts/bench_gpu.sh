#!/bin/bash
# The GPU performance check of README "Performance", one command on a CUDA machine (about 9 min on
# an H200): model step (ours compiled vs transformers vs the official classes), the end-to-end
# loader + step with the crops on the GPU (the CUDA default) and in the workers, and the loader
# alone. Each result is one JSON file in OUT_DIR.
#   usage: scripts/bench_gpu.sh OUT_DIR [OFFICIAL_DIR]
# OFFICIAL_DIR holds modeling_pretrain.py and modeling_finetune.py of github.com/MCG-NJU/VideoMAE
# (not shipped with this project); without it the official comparison is skipped.
set -u
out=${1:?usage: scripts/bench_gpu.sh OUT_DIR [OFFICIAL_DIR]}
official=${2:-}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"

bench() {  # bench NAME TIMEOUT_S ARGS...: vmae bench ARGS > OUT_DIR/NAME.json
    local name=$1 limit=$2
    shift 2
    echo "== vmae bench $*"
    timeout "$limit" python3 -m vmae bench "$@" >"$out/$name.json" 2>"$out/$name.err"
    echo "exit $?"
    cat "$out/$name.json"
}

bench model 300 model --compare-hf ${official:+--compare-official "$official"} --profile --steps 20 --warmup 5
bench train 200 train --frame-cache --steps 20 --warmup 5 --videos 256
bench train_worker 150 train --augment-on worker --steps 20 --warmup 5 --videos 256
bench loader 120 loader --videos 48 --seconds 4
