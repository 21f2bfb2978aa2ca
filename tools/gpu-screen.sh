#!/usr/bin/env bash
# On the GPU machine, from the repository root (tools/publish-gpu.sh tests first; the test runner doubles as the CLI):
# issue 18's multiplier screen. Checks the GPU screen against the CPU one (MultiplierScreenTests), times the screen
# at K = 2, 3, 4, screens N random odd MCG multipliers at K = 2 plus the seed discussion's candidates against
# exllamav3's 0xCBAC1FED, then re-screens the top 20 and the candidates on fresh tiles (another seed, 4× the tiles),
# because the top of a ranking is chosen on its own tiles and its intervals there are optimistic.
#   tools/gpu-screen.sh OUT_DIR [N=10000] [TILES=2048]
# Resumable: every screen appends to its journal in OUT_DIR (*.jsonl), so rerunning the same command after a time
# limit skips what is done (keep OUT_DIR on the machine, e.g. /tmp/screen, and copy OUT_DIR/results.tgz back). Writes
# OUT_DIR/{throughput.txt, screen-k2.txt/.json/.svg/.jsonl, confirm-k2.*, *.log} and results.tgz of all of them
# (the 10,000-line journal and ranking compress ~5×).
set -uo pipefail
out="$1"; n="${2:-10000}"; tiles="${3:-2048}"
trellis() { .gpu/tests/Converter.Cuda.Tests trellis "$@"; }
mkdir -p "$out"
cat > "$out/candidates.txt" <<'LIST'
# the seed discussion's MCG candidates (exllamav3 PR #26 thread)
0xFF7A83E5
0xCAF6A435
0xE2A54B45
LIST

TRELLIS_REQUIRE_GPU=1 .gpu/tests/Converter.Cuda.Tests MultiplierScreenTests | tail -3

# Throughput: 200 random multipliers per K on 1024 tiles (fresh journals, so every one is measured).
thr_n=200; thr_tiles=1024
: > "$out/throughput.txt"
for k in 2 3 4; do
  rm -f "$out/throughput-k$k.jsonl"
  t0=$(date +%s.%N)
  trellis codebooks --random "$thr_n" --random-seed 7 --bits "$k" --tiles "$thr_tiles" --device cuda:0 --out "$out/throughput-k$k.jsonl" \
    >/dev/null 2>"$out/throughput-k$k.log" || { echo "throughput K=$k FAILED"; tail -3 "$out/throughput-k$k.log"; }
  # Per multiplier from the journal (each result's own seconds: table build, encode, statistics), and the whole
  # command (process start, kernel compilation and the reference too).
  python3 - "$k" "$thr_tiles" "$t0" "$(date +%s.%N)" "$out/throughput-k$k.jsonl" <<'PY' | tee -a "$out/throughput.txt"
import json, sys
k, tiles, wall = sys.argv[1], int(sys.argv[2]), float(sys.argv[4]) - float(sys.argv[3])
rows = [json.loads(l) for l in open(sys.argv[5]) if l.strip()][1:]
s = sum(r["seconds"] for r in rows)
print(f"K={k}: {len(rows)} multipliers x {tiles} tiles: {s:.1f} s measuring = {len(rows)*60/s:.0f} multipliers/min, {len(rows)*tiles/s:.0f} tiles/s "
      f"({rows[0]['device']}; whole command {wall:.1f} s)")
PY
done

screen() {  # screen NAME LIST SEED TILES [extra…]
  local name="$1" list="$2" seed="$3" t="$4"; shift 4
  trellis codebooks --codebook mcg --screen "$list" "$@" --bits 2 --tiles "$t" --seed "$seed" --device cuda:0 \
    --out "$out/$name.jsonl" --top 20 --plot "$out/$name.svg" >"$out/$name.txt" 2>"$out/$name.log" \
    && trellis codebooks --codebook mcg --screen "$list" "$@" --bits 2 --tiles "$t" --seed "$seed" --device cuda:0 \
      --out "$out/$name.jsonl" --json >"$out/$name.json" 2>>"$out/$name.log" \
    || { echo "$name FAILED"; tail -3 "$out/$name.log"; return 1; }
  cat "$out/$name.txt"
}
t0=$(date +%s)
screen screen-k2 "$out/candidates.txt" 0 "$tiles" --random "$n" --random-seed 1 --top-list "$out/top20.txt" || exit 1
echo "screen of $n + 3 multipliers x $tiles tiles: $(( $(date +%s) - t0 )) s"

# The top 20 and the candidates again, on tiles the ranking never saw.
cat "$out/top20.txt" "$out/candidates.txt" > "$out/confirm.txt"
screen confirm-k2 "$out/confirm.txt" 1 $(( tiles * 4 )) || exit 1
tar -czf "$out/results.tgz" -C "$out" $(cd "$out" && ls *.txt *.svg *.json *.jsonl *.log 2>/dev/null)
ls -la "$out"
