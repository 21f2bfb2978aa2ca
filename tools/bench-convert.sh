#!/usr/bin/env bash
# Converts models at several bit widths, timing each run and reading where the time went from the
# converter's own record (trellis-convert.json). Prints a table and writes tools/out/bench-convert.json.
#   tools/bench-convert.sh MODEL_DIR "2 3 4" [extra convert options…]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$1"; bits="$2"; shift 2
out="$root/tools/out"; mkdir -p "$out"
# A private copy of the build, so rebuilding the tree while this runs cannot swap the binary under a conversion.
dotnet build "$root/src/Convert/Convert.csproj" -c Release --nologo -v quiet >/dev/null
rm -rf "$out/app" && cp -r "$root/src/Convert/bin/Release/net10.0" "$out/app"
name="$(basename "$model")"
results="$out/bench-convert-$name.jsonl"; : > "$results"
for b in $bits; do
  dir="$out/$name-$b$(echo "$*" | tr -d ' -')"
  rm -rf "$dir" "$dir.work"
  /usr/bin/time -f "%e %M %U %S" -o "$out/time.txt" dotnet "$out/app/trellis.dll" convert "$model" -o "$dir" --bits "$b" "$@" 2>"$out/log-$name-$b.txt" >/dev/null
  read -r wall rss user sys < "$out/time.txt"
  python3 - "$dir/trellis-convert.json" "$b" "$wall" "$rss" "$user" "$sys" "$*" >> "$results" <<'PY'
import json, sys
path, bits, wall, rss, user, sys_s, extra = sys.argv[1:]
d = json.load(open(path))
m, t = d["modules"], d["tensors"]
print(json.dumps({
    "model": path.split("/")[-2], "bits": float(bits), "options": extra, "wall_s": float(wall), "cpu_s": float(user) + float(sys_s), "load_avg": __import__("os").getloadavg()[0], "peak_rss_mib": int(rss) / 1024,
    "capture_s": sum(x["capture_seconds"] for x in m), "forward_s": sum(x["forward_seconds"] for x in m),
    "scale_search_s": sum(x["scale_search_seconds"] for x in t), "ldlq_viterbi_s": sum(x["ldlq_seconds"] for x in t),
    "mean_proxy_err": sum(x["proxy_err"] for x in t) / len(t),
    "last_layer_rfn": [x["rfn_err"] for x in m if x["rfn_err"] is not None][-2],
}))
PY
  tail -n 1 "$results"
done
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'model':<28} {'bpw':>4} {'wall s':>7} {'CPU s':>7} {'RSS MiB':>8} {'capture':>8} {'search':>7} {'LDLQ':>7} {'forward':>8} {'proxy':>9}")
for r in rows:
    print(f"{r['model']:<28} {r['bits']:>4} {r['wall_s']:>7.0f} {r.get('cpu_s', 0):>7.0f} {r['peak_rss_mib']:>8.0f} {r['capture_s']:>8.1f} {r['scale_search_s']:>7.1f} {r['ldlq_viterbi_s']:>7.1f} {r['forward_s']:>8.1f} {r['mean_proxy_err']:>9.2e}")
PY
