#!/usr/bin/env bash
# Compares two versions of the Viterbi search kernel on the GPU machine: every K, bit-identity of the states and
# tiles/s. Found the packed-codebook and split-barrier changes of session 11 (docs/gpu-notes.md, "Version 2").
#   tools/encoder-lab/run.sh BASELINE.cu CANDIDATE.cu [TILES] [K...]
# e.g. locally: git show HEAD~3:src/Cuda/Kernels/viterbi.cu > .gpu/jobs/base.cu, then in a device call:
#   tools/encoder-lab/run.sh .gpu/jobs/base.cu src/Cuda/Kernels/viterbi.cu 16384
# Extra nvcc flags for the candidate (e.g. -DSOME_SWITCH) go in CANDIDATE_FLAGS.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
base="$(realpath "$1")"; cand="$(realpath "$2")"; tiles="${3:-16384}"; shift $(( $# < 3 ? $# : 3 ))
ks=("$@"); [[ ${#ks[@]} -eq 0 ]] && ks=(1 2 3 4 5 6 7 8)
work="$(mktemp -d)"
build() { # name source K flags...
  local n=$1 src=$2 k=$3; shift 3; local tpb=2; [[ $k == 1 ]] && tpb=1
  nvcc -arch=sm_90 -O3 -std=c++17 -DTRELLIS_K=$k -DTRELLIS_TILES=$tpb -DKSRC="\"$src\"" "$@" "$here/lab.cu" -o "$work/$n" -Xptxas -v > "$work/$n.ptxas" 2>&1 \
    || { echo "build failed: $n"; grep -i error "$work/$n.ptxas" | head; }
}
for k in "${ks[@]}"; do build base$k "$base" "$k" & build cand$k "$cand" "$k" ${CANDIDATE_FLAGS:-} & done
wait
for k in "${ks[@]}"; do
  echo "K=$k candidate: $(grep -E 'spill' "$work/cand$k.ptxas" | tail -1 | sed 's/ *ptxas info *: *//')"
  echo -n "  baseline  "; "$work/base$k" "$tiles" 5 "$work/base$k.st"
  echo -n "  candidate "; "$work/cand$k" "$tiles" 5 "$work/cand$k.st" "$work/base$k.st"
done
