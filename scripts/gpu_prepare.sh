#!/bin/bash
# Prepares a run of scripts/bench_gpu.sh on a GPU machine that reaches no package registry (this
# workplace's H200: Python 3.12, x86-64, torch / timm / transformers / pandas / scipy installed), on a
# machine that does. Everything goes into folders git ignores (.git/info/exclude), never committed:
#   .whl/       the project's packages that GPU image lacks, as wheels (the versions of constraints.txt)
#   .official/  modeling_pretrain.py and modeling_finetune.py of github.com/MCG-NJU/VideoMAE, from
#               OFFICIAL_GIT (a clone or a bare git directory of it; without it the comparison is skipped)
#   usage: scripts/gpu_prepare.sh [OFFICIAL_GIT]
# Then, on the GPU machine, with .whl and .official carried: scripts/gpu_run.sh PART OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
official_git=${1:-}
git_dir=$official_git
[ -d "$official_git/.git" ] && git_dir=$official_git/.git
if [ -n "$official_git" ] && [ ! -f "$git_dir/HEAD" ]; then
    echo "error: $official_git is not a git clone or git directory of MCG-NJU/VideoMAE" >&2
    exit 1
fi
exclude=.git/info/exclude
mkdir -p .git/info
for folder in /.whl/ /.official/; do
    grep -qxF "$folder" "$exclude" 2>/dev/null || echo "$folder" >>"$exclude"
done

# decord and PyAV read the videos; jsonschema (and what it needs) checks configs and dataset files.
packages=(decord av jsonschema jsonschema-specifications referencing rpds-py)
pins=()
for name in "${packages[@]}"; do
    pin=$(grep -iE "^${name}==" constraints.txt) || { echo "error: constraints.txt pins no $name" >&2; exit 1; }
    pins+=("$pin")
done
rm -rf .whl && mkdir .whl
platforms=()
for tag in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 \
           manylinux_2_24 manylinux_2_17 manylinux2014 manylinux2010 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "${pins[@]}"
echo "wheels in .whl/ ($(du -sh .whl | cut -f1)):"
ls .whl

rm -rf .official
if [ -n "$official_git" ]; then
    mkdir .official
    for file in modeling_pretrain.py modeling_finetune.py; do
        git --git-dir "$git_dir" show "HEAD:$file" >".official/$file"
    done
    echo "official model files in .official/: $(ls .official | tr '\n' ' ')"
fi
echo "carry: .whl${official_git:+ .official}; command: scripts/gpu_run.sh model|data|memory \"\$OUT\""
