#!/usr/bin/env python3
"""
Where the GPU waited, from an Nsight Systems trace exported to SQLite (`nsys export --type sqlite`; gpu-issue14.sh
NSYS=1 makes both): the GPU's work (kernels, copies, memsets) merged into busy stretches, the gaps between them of at
least --min-us, and for each gap the CUDA call the host had just returned from (usually the wait that drained the
queue: a synchronize, a copy to the host, a free) and the call whose work ended it. Prints the busy fraction, the gaps'
total by those calls, and the longest gaps.

  tools/nsys-gaps.py RUN.sqlite [--min-us 20] [--top 20] [--from S --to S]   (seconds from the trace's first GPU work)
"""
import argparse
import bisect
import collections
import sqlite3


def table_exists(db, name):
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("sqlite")
    ap.add_argument("--min-us", type=float, default=20.0)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--from", dest="start", type=float, default=None)
    ap.add_argument("--to", dest="end", type=float, default=None)
    a = ap.parse_args()
    db = sqlite3.connect(a.sqlite)
    strings = dict(db.execute("SELECT id, value FROM StringIds")) if table_exists(db, "StringIds") else {}

    work = []  # (start ns, end ns, correlationId)
    for table in ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET"):
        if table_exists(db, table):
            work += db.execute(f"SELECT start, end, correlationId FROM {table}").fetchall()
    if not work:
        raise SystemExit(f"{a.sqlite}: no kernels, copies or memsets in this trace")
    work.sort()
    t0 = work[0][0]
    lo = t0 + int(a.start * 1e9) if a.start is not None else t0
    hi = t0 + int(a.end * 1e9) if a.end is not None else max(e for _, e, _ in work)

    calls = []  # (start ns, end ns, name, correlationId)
    if table_exists(db, "CUPTI_ACTIVITY_KIND_RUNTIME"):
        calls = sorted((s, e, strings.get(n, str(n)), c) for s, e, n, c in
                       db.execute("SELECT start, end, nameId, correlationId FROM CUPTI_ACTIVITY_KIND_RUNTIME"))
    launch_of = {c: name for _, _, name, c in calls}
    call_ends = sorted((e, name) for _, e, name, _ in calls)
    end_times = [e for e, _ in call_ends]

    # Busy stretches within [lo, hi]: the union of the work's intervals.
    busy, gaps = 0, []
    cur_s = cur_e = None
    for s, e, c in work:
        s, e = max(s, lo), min(e, hi)
        if e <= s:
            continue
        if cur_e is None:
            cur_s, cur_e = s, e
            continue
        if s > cur_e:
            busy += cur_e - cur_s
            gaps.append((cur_e, s, c))
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        busy += cur_e - cur_s
    span = hi - lo
    print(f"window {(lo - t0) / 1e9:.3f}–{(hi - t0) / 1e9:.3f} s: GPU busy {100 * busy / span:.1f}% "
          f"({busy / 1e9:.3f} of {span / 1e9:.3f} s), {len(gaps)} gaps")

    long_gaps = [(s, e, c) for s, e, c in gaps if e - s >= a.min_us * 1e3]
    by_cause = collections.Counter()
    by_cause_n = collections.Counter()
    rows = []
    for s, e, c in long_gaps:
        # The host call that returned last before the gap began, else the nearest before it.
        i = bisect.bisect_right(end_times, s + 50_000) - 1  # 50 µs of slack for the return after the GPU's last work
        before = call_ends[i][1] if i >= 0 else "?"
        after = launch_of.get(c, "?")
        cause = f"{before}  →  {after}"
        by_cause[cause] += e - s
        by_cause_n[cause] += 1
        rows.append((e - s, (s - t0) / 1e9, cause))
    total = sum(e - s for s, e, _ in long_gaps)
    print(f"gaps of ≥ {a.min_us:g} µs: {len(long_gaps)}, {total / 1e6:.1f} ms ({100 * total / span:.1f}% of the window)")
    print("\nby the call returned before the gap → the call whose work ended it:")
    for cause, ns in by_cause.most_common(a.top):
        print(f"  {ns / 1e6:9.1f} ms  {by_cause_n[cause]:6d}×  {cause}")
    print("\nlongest:")
    for ns, at, cause in sorted(rows, reverse=True)[:a.top]:
        print(f"  {ns / 1e6:8.2f} ms at {at:9.3f} s  {cause}")


if __name__ == "__main__":
    main()
