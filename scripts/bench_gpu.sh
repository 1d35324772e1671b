#!/bin/bash
# The GPU check of README "Performance", on a CUDA machine. Each result is one file in OUT_DIR.
#   usage: [BENCH_PART=model|data|memory|all] scripts/bench_gpu.sh OUT_DIR [OFFICIAL_DIR]
# model (about 5 min on an H200): the CUDA-only tests (gradient accumulation with k = 8 under the
#   compiled model among them), then the model step (ours compiled vs transformers vs the official
#   classes, with a profile);
# data (about 5 min): the end-to-end loader + step with the crops on the GPU (the CUDA default) and
#   in the workers, and the loader alone;
# memory (about 4 min, an estimate): the peak memory of paper.yaml's micro-batches, eager for every
#   recipe and every mask ratio its studies use, then VideoMAE at 0.9 compiled as the recipe runs it
#   (compiling ViT-B is most of that minute or two);
# all (the default): the three, about 14 min: split it where one command may run 10 min at most.
# OFFICIAL_DIR holds modeling_pretrain.py and modeling_finetune.py of github.com/MCG-NJU/VideoMAE
# (not shipped with this project); without it the official comparison is skipped.
set -u
out=${1:?usage: [BENCH_PART=model|data|all] scripts/bench_gpu.sh OUT_DIR [OFFICIAL_DIR]}
official=${2:-}
part=${BENCH_PART:-all}
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

if [[ $part == all || $part == model ]]; then
    echo "== CUDA tests"  # the tests that skip without CUDA, and the rest of their files
    timeout 300 python3 -m pytest -q -rs -o addopts= -p no:cacheprovider tests/test_prefetch.py \
        tests/test_device_augment.py tests/test_train_commands.py "tests/test_accumulation.py::test_8_micro_batches_on_cuda_compiled_make_the_step_of_one_batch" \
        >"$out/cuda_tests.txt" 2>&1
    echo "exit $?"
    tail -5 "$out/cuda_tests.txt"
    bench model 300 model --compare-hf ${official:+--compare-official "$official"} --profile --steps 20 --warmup 5
fi
if [[ $part == all || $part == data ]]; then
    bench train 200 train --frame-cache --steps 20 --warmup 5 --videos 256
    bench train_worker 150 train --augment-on worker --steps 20 --warmup 5 --videos 256
    bench loader 120 loader --videos 48 --seconds 4
fi
if [[ $part == all || $part == memory ]]; then
    bench memory_eager 200 memory --no-compile
    bench memory 200 memory --recipes videomae --mask-ratios 0.9
fi
