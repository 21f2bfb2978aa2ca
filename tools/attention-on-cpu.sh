#!/usr/bin/env bash
# Runs the fused attention kernel (src/Cuda/Kernels/attention.cu) on the CPU, its CUDA emulated by
# tools/attention-on-cpu/cuda-shim.h, against a float64 reference, for a few head/value widths: a check of the
# kernel's logic (tiles, masks, online softmax, sinks) on a machine without a GPU. It does not check what only a GPU
# shows (NVRTC's dialect, alignment faults, races the barrier emulation hides): tests/Cuda.Tests does that.
#   tools/attention-on-cpu.sh            (needs g++ with C++20; ~1 min)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
status=0
for widths in "64 64" "40 24" "192 128" "256 256"; do
  set -- $widths
  g++ -std=c++20 -O2 -pthread -Wno-unknown-pragmas -DATTENTION_HEAD_DIM="$1" -DATTENTION_VALUE_DIM="$2" \
    "$root/tools/attention-on-cpu/check.cpp" -o "$build/check-$1-$2"
  "$build/check-$1-$2" || status=1
done
exit $status
