#!/usr/bin/env bash
# Issue 17 on the GPU machine: conversions whose calibration state, checkpoints and tensors pass 2 GiB.
#   tools/gpu-2gib-proof.sh OUT_DIR PHASE
# PHASE, each within one 10-minute device call (run them in this order on one warm machine; 8b-resume compares its
# output with 8b-full's):
#   8b-full    synthesize a 4-layer llama-3-8b; convert it at 4 bpw, 250 × 2048 calibration tokens (an 8.4 GB state)
#   8b-resume  the same conversion stopped after 2 modules (checkpoints of 8.4 GB), then --resume; cmp with 8b-full
#   70b        synthesize a 1-layer llama-3-70b (2.1 GB bf16 embedding and head); convert it at 128 × 512 calibration
#              tokens (the default before the volume scaled with the model), whose 2 GiB state is checkpointed after every module
#   clean      remove the scratch directory
# Run from the repository root; the CLI is $TRELLIS, else .gpu/trellis/trellis or .gpu/app/trellis (tools/publish-gpu.sh).
# Models and outputs go to $TRELLIS_PROOF_SCRATCH (default /tmp/trellis-2gib, ~25 GiB at the peak). OUT_DIR gets per
# phase PHASE.log (commands, convert logs, timings, peak RSS, listings) and PHASE.jsonl (one record per step), and
# summary.txt: at most 7 small files.
set -uo pipefail
out="${1:?usage: tools/gpu-2gib-proof.sh OUT_DIR 8b-full|8b-resume|70b|clean}"
phase="${2:?usage: tools/gpu-2gib-proof.sh OUT_DIR 8b-full|8b-resume|70b|clean}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="${TRELLIS_PROOF_SCRATCH:-/tmp/trellis-2gib}"
cli="${TRELLIS:-}"
if [ -z "$cli" ]; then
  for candidate in "$root/.gpu/trellis/trellis" "$root/.gpu/app/trellis"; do
    [ -x "$candidate" ] && cli="$candidate" && break
  done
fi
[ "$phase" = clean ] || [ -x "$cli" ] || { echo "no trellis CLI: set TRELLIS or run tools/publish-gpu.sh app" >&2; exit 1; }
mkdir -p "$out" "$scratch"
log="$out/$phase.log"
records="$out/$phase.jsonl"
status=0

# Runs one step: the command line and its stderr go to the log, its stdout (convert --json) into the step's record
# with the exit code, wall seconds and peak RSS (/usr/bin/time -v when present).
step() {
  local name="$1"; shift
  echo "=== $name: $*" >> "$log"
  local stdout="$scratch/stdout.txt" times="$scratch/time.txt" start end rc rss
  : > "$times"
  start=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$times" "$@" > "$stdout" 2>> "$log"; rc=$?
  else
    "$@" > "$stdout" 2>> "$log"; rc=$?
  fi
  end=$(date +%s.%N)
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$times")
  local wall
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  local json
  json=$(tr -d '\n' < "$stdout")
  [ -n "$json" ] && [ "${json:0:1}" = "{" ] || json="null"
  printf '{"phase":"%s","step":"%s","rc":%d,"wall_s":%s,"peak_rss_kib":%s,"result":%s}\n' \
    "$phase" "$name" "$rc" "$wall" "${rss:-null}" "$json" >> "$records"
  echo "--- $name: exit $rc, ${wall} s, peak RSS ${rss:-?} KiB" | tee -a "$log"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}

note() { echo "$*" | tee -a "$log"; }

# 250 rows × 2048 tokens need 512,000 tokens; samples/data/calibration.txt holds 346,563 (169 windows of 2048) with
# the sample model's tokenizer, which synth copies. Three copies give ~500 windows for the seeded choice.
calibration() {
  local text="$scratch/calibration-x3.txt"
  [ -s "$text" ] || { for _ in 1 2 3; do cat "$root/samples/data/calibration.txt"; done > "$text"; }
  echo "$text"
}

synth() { # shape layers dir
  if [ -f "$3/config.json" ] && [ -f "$3/model.safetensors.index.json" -o -f "$3/model.safetensors" ]; then
    note "reusing $3"
  else
    step "synth-$1" "$cli" synth --shape "$1" --layers "$2" -o "$3" --overwrite
  fi
  du -sh "$3" >> "$log"
}

# Options every 8B conversion shares: 4 bpw, the calibration volume of exllamav3's default (250 × 2048).
options8b=(--bits 4 --cal-rows 250 --cal-cols 2048 --device cuda:0 --json)

case "$phase" in
  8b-full)
    synth llama-3-8b 4 "$scratch/l8b"
    rm -rf "$scratch/q8b-full" "$scratch/q8b-full.work"
    step convert-full "$cli" convert "$scratch/l8b" -o "$scratch/q8b-full" "${options8b[@]}" --cal-text "$(calibration)"
    ls -la "$scratch/q8b-full" >> "$log"
    ;;
  8b-resume)
    synth llama-3-8b 4 "$scratch/l8b"
    rm -rf "$scratch/q8b-resume" "$scratch/q8b-resume.work"
    # --stop-after 2 stops after the embedding and layer 0 as if killed; --checkpoint-interval 1 checkpoints after both.
    step convert-stop "$cli" convert "$scratch/l8b" -o "$scratch/q8b-resume" "${options8b[@]}" --cal-text "$(calibration)" --stop-after 2 --checkpoint-interval 1
    ls -la "$scratch/q8b-resume.work/ckpt" >> "$log"
    step convert-resume "$cli" convert "$scratch/l8b" -o "$scratch/q8b-resume" "${options8b[@]}" --cal-text "$(calibration)" --resume
    if [ -d "$scratch/q8b-full" ]; then
      same=1
      for f in "$scratch"/q8b-full/*.safetensors "$scratch"/q8b-full/*.json; do
        name=$(basename "$f")
        # The record holds timings, which differ run to run; the model files must not.
        [ "$name" = trellis-convert.json ] && continue
        if cmp "$f" "$scratch/q8b-resume/$name" >> "$log" 2>&1; then note "identical: $name"; else note "DIFFERENT: $name"; same=0; fi
      done
      [ "$same" -eq 1 ] && note "resumed output is byte-identical to the uninterrupted one" || status=1
    else
      note "no $scratch/q8b-full to compare with: run phase 8b-full first on this machine"
      status=1
    fi
    ;;
  70b)
    synth llama-3-70b 1 "$scratch/l70b"
    rm -rf "$scratch/q70b" "$scratch/q70b.work"
    step convert-70b "$cli" convert "$scratch/l70b" -o "$scratch/q70b" --cal-rows 128 --cal-cols 512 --device cuda:0 --checkpoint-interval 1 --json
    ls -la "$scratch/q70b" >> "$log"
    ;;
  clean)
    rm -rf "$scratch"
    exit 0
    ;;
  *)
    echo "unknown phase '$phase' (8b-full, 8b-resume, 70b, clean)" >&2
    exit 2
    ;;
esac

grep -E "estimate:|checkpoint after|resuming|Converted|stopped|error" "$log" | tail -n 20
echo "$phase: $([ "$status" -eq 0 ] && echo ok || echo FAILED) ($(date -u +%FT%TZ))" | tee -a "$out/summary.txt"
exit "$status"
