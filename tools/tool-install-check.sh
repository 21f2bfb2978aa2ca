#!/usr/bin/env bash
# Installs trellis the way a user without a clone does, and runs it where no clone is in sight:
#   1. a fresh `git clone` of this checkout's HEAD (commit first: uncommitted changes are not in it; no bin/ or obj/),
#   2. `dotnet pack src/Convert -c Release -o PKG` there,
#   3. `dotnet tool install --tool-path BIN --add-source PKG trellis`,
#   4. from an empty folder outside the clone: `trellis --help`, `trellis synth` of a tiny random model (the built-in
#      tokenizer), `trellis convert` of it with the built-in calibration mix, `trellis inspect` of the result, and a
#      check that the output has its model card naming that text.
# Usage: tools/tool-install-check.sh [WORK_DIR]   (default: a new temp folder, removed when everything passed)
# Prints one line per step and "tool-install-check: ok" at the end; exits non-zero at the first failing step.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$(mktemp -d -t trellis-tool-XXXXXX)}"
keep="${1:+yes}"
mkdir -p "$work"
clone="$work/clone" pkg="$work/pkg" bin="$work/bin" run="$work/run"
rm -rf "$clone" "$pkg" "$bin" "$run"
mkdir -p "$run"
log="$work/tool-install-check.log"
: > "$log"

step() {
  local name="$1"; shift
  local start=$SECONDS
  if "$@" >> "$log" 2>&1; then
    echo "tool-install-check: $name ok ($((SECONDS - start)) s)"
  else
    echo "tool-install-check: $name FAILED (log: $log)" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

step clone git clone --quiet --no-local "$root" "$clone"
step pack dotnet pack "$clone/src/Convert" -c Release -o "$pkg" --nologo
echo "tool-install-check: package $(cd "$pkg" && ls trellis.*.nupkg) ($(du -k "$pkg"/trellis.*.nupkg | cut -f1) KiB)"
step install dotnet tool install --tool-path "$bin" --add-source "$pkg" trellis
cd "$run"
case "$(pwd -P)/" in "$clone"/*|"$root"/*) echo "tool-install-check: $run lies inside a clone" >&2; exit 1;; esac
help() { "$bin/trellis" --help && "$bin/trellis" --help | grep -q "convert" && "$bin/trellis" convert --help | grep -q -- "--allow-nonstandard-multiplier"; }
synth() { "$bin/trellis" synth --shape test-tiny -o synth-model && cmp "$clone/samples/tiny-llama/tokenizer.json" synth-model/tokenizer.json; }
# The one-layer random model, small calibration and an fp16 head: seconds, not the sample model's minutes.
convert() {
  "$bin/trellis" convert synth-model -o synth-exl3 --bits 2 --head-bits 16 --cal-rows 8 --cal-cols 64 --device cpu &&
    grep -q "tokens of built-in trellis-cal" synth-exl3/README.md
}
step help help
step synth synth
step convert convert
step inspect "$bin/trellis" inspect synth-exl3
echo "tool-install-check: ok (trellis installed from $pkg into $bin, run in $run)"
if [ -z "$keep" ]; then
  cd /
  rm -rf "$work"
fi
