using Microsoft.Diagnostics.Tracing;

// The garbage collections of a `trellis convert` run from its CPU sampling trace (tools/nettrace-hotspots.py says how
// to record one): each collection at least --min-ms long (default 20) with its start in seconds since the trace began,
// generation, reason, kind and whether it compacted, and the large-object and pinned-object heaps after it. The
// sampling profiler's own thread suspensions make GC pause totals from a sampled trace meaningless; collections are not.
if (args.Length is < 1 or > 3 || (args.Length == 3 && args[1] != "--min-ms"))
{
    Console.Error.WriteLine("usage: trellis-gc-events RUN.nettrace [--min-ms N]");
    return 2;
}
if (!File.Exists(args[0]))
{
    Console.Error.WriteLine($"trellis-gc-events: {args[0]}: no such file");
    return 1;
}
double minMs = args.Length == 3 ? double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 20;
using var source = new EventPipeEventSource(args[0]);
var started = new Dictionary<int, (double Ms, int Generation, string Reason, string Kind)>();
string mechanisms = "";
var lines = new List<string>();
(int Index, double Ms)? open = null;
source.Clr.GCStart += e =>
{
    started[e.Count] = (e.TimeStampRelativeMSec, e.Depth, e.Reason.ToString(), e.Type.ToString());
    open = null;
};
source.Clr.GCGlobalHeapHistory += e => mechanisms = e.GlobalMechanisms.ToString();
source.Clr.GCStop += e =>
{
    if (started.Remove(e.Count, out var s) && e.TimeStampRelativeMSec - s.Ms >= minMs)
        open = (e.Count, e.TimeStampRelativeMSec - s.Ms);
    if (open is { } gc && gc.Index == e.Count)
        lines.Add($"{s.Ms / 1000,9:F3} s  gc {e.Count,-5} gen{s.Generation} {s.Reason,-10} {s.Kind,-16} {gc.Ms,8:F1} ms  {(mechanisms.Contains("Compaction") ? "compacting" : "sweeping"),-10}");
};
source.Clr.GCHeapStats += e =>
{
    if (open is not null && lines.Count > 0)
        lines[^1] += $"  LOH {e.GenerationSize3 / 1e9:F2} GB (live {e.TotalPromotedSize3 / 1e9:F2}), POH {e.GenerationSize4 / 1e9:F2} GB";
    open = null;
};
source.Process();
Console.WriteLine($"collections of at least {minMs} ms: {lines.Count}");
foreach (var line in lines)
    Console.WriteLine(line);
return 0;
