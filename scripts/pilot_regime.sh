#!/bin/bash
# The pilot that chose the synthetic default regime (workflow/config/config.yaml says what it found).
#   usage: scripts/pilot_regime.sh OUT_DIR [SEEDS...]   (default seeds: 100 101)
# Everything is scored on the dataset's val split; the reported numbers are on its test split and
# on seeds 0-4, which no pilot uses. Arms, each seed: scratch; VideoMAE tube masking at each of
# PILOT_RATIOS for PILOT_STEPS optimiser steps; MoCo v3 for PILOT_MOCO_EPOCHS epochs (first seed
# only; 0 = none). Each is fine-tuned for PILOT_FT_EPOCHS epochs with val accuracy every
# PILOT_EVAL_EVERY epochs (the curve in its log.jsonl), and linearly probed (C by cross-validation
# on the training set). PILOT_DATASET: a dataset name or YAML (default synthetic-clean). One lane a
# seed, one thread each (about 50 CPU-minutes for the defaults and two seeds on 2 cores).
set -euo pipefail
out=${1:?usage: scripts/pilot_regime.sh OUT_DIR [SEEDS...]}
shift
if [ $# -gt 0 ]; then seeds=("$@"); else seeds=(100 101); fi
steps=${PILOT_STEPS:-700}
read -r -a ratios <<< "${PILOT_RATIOS:-0.9 0.75}"
ft_epochs=${PILOT_FT_EPOCHS:-24}
eval_every=${PILOT_EVAL_EVERY:-3}
moco_epochs=${PILOT_MOCO_EPOCHS:-25}
dataset=${PILOT_DATASET:-synthetic-clean}
recipes=workflow/config/recipes
model=(model.size=vit_micro model.img_size=32 model.patch_size=4 model.num_frames=16 model.tubelet_size=4)
export VMAE_THREADS=1 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
data="$out/data"
mkdir -p "$out/logs"
[ -f "$data/dataset.json" ] || vmae prepare "$dataset" --out "$data" --workers 2 > "$out/logs/prepare.log"

pretrain() {  # pretrain NAME SEED ARGS...
    local name=$1 seed=$2
    shift 2
    vmae pretrain --data "$data" --out "$out/pretrain/$name" --seed "$seed" "${model[@]}" "$@" \
        > "$out/logs/pretrain_$name.log" 2>&1
}

evaluate() {  # evaluate NAME SEED [INIT]: fine-tune and probe, both scored on val
    local name=$1 seed=$2 init=()
    [ $# -ge 3 ] && init=(--init "$3")
    vmae finetune --data "$data" --out "$out/finetune/$name" --seed "$seed" --eval-manifest "$data/val.csv" \
        "${init[@]}" --config "$recipes/finetune_cpu.yaml" --epochs "$ft_epochs" eval_every="$eval_every" "${model[@]}" \
        > "$out/logs/finetune_$name.log" 2>&1
    vmae linprobe --data "$data" --out "$out/linprobe/$name" --seed "$seed" --eval-manifest "$data/val.csv" \
        "${init[@]}" --config "$recipes/linprobe_cpu.yaml" "${model[@]}" > "$out/logs/linprobe_$name.log" 2>&1
}

lane() {  # every arm of one seed, in order
    local seed=$1
    evaluate "scratch_s$seed" "$seed"
    for ratio in "${ratios[@]}"; do
        pretrain "videomae_r${ratio}_s$seed" "$seed" --config "$recipes/videomae_cpu.yaml" masking=tube \
            mask_ratio="$ratio" optim.steps="$steps"
        evaluate "videomae_r${ratio}_s$seed" "$seed" "$out/pretrain/videomae_r${ratio}_s$seed/checkpoint.pt"
    done
    if [ "$seed" = "${seeds[0]}" ] && [ "$moco_epochs" -gt 0 ]; then
        pretrain "mocov3_s$seed" "$seed" --method mocov3 --config "$recipes/mocov3_cpu.yaml" --epochs "$moco_epochs" \
            optim.warmup_epochs="$(python -c "print($moco_epochs / 10)")"
        evaluate "mocov3_s$seed" "$seed" "$out/pretrain/mocov3_s$seed/checkpoint.pt"
    fi
}

pids=()
for seed in "${seeds[@]}"; do
    lane "$seed" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
echo "pilot done: $out"
