using System.Text.Json;
using Converter.Conversion.Reporting;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// The trace file `convert --timeline` writes: the converter's spans as process 1, and with `--timeline-gpu` what the
/// GPU ran as process 2 and the driver calls as process 3, named, on the same microsecond axis, each device span with
/// the correlation that ties it to its call (what tools/gpu-gaps.py reads).
/// </summary>
public sealed class ConversionTimelineTests
{
    [Test]
    public void DeviceSpansAreWrittenBesideTheHostsOnOneAxisWithTheirCorrelations()
    {
        var timeline = new ConversionTimeline();
        timeline.Add("model.layers.0 capture", "module", 1.0, 0.5);
        timeline.AddDevice([
            new ConversionTimeline.DeviceSpan("cuLaunchKernel", false, 4242, 1.1, 2e-6, 7, 0),
            new ConversionTimeline.DeviceSpan("gemm_kernel", true, 0, 1.10001, 3.5e-6, 7, 0),
            new ConversionTimeline.DeviceSpan("memcpy HtoD", true, 0, 1.2, 1e-3, 8, 4096),
        ]);
        string path = Path.Combine(Path.GetTempPath(), $"trellis-timeline-{Guid.NewGuid():N}.json");
        try
        {
            timeline.Write(path);
            using var trace = JsonDocument.Parse(File.ReadAllText(path));
            var events = trace.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
            var spans = events.Where(e => e.GetProperty("ph").GetString() == "X").ToList();
            var names = events.Where(e => e.GetProperty("ph").GetString() == "M")
                .ToDictionary(e => e.GetProperty("pid").GetInt32(), e => e.GetProperty("args").GetProperty("name").GetString());
            Assert.That(names.Keys, Is.EquivalentTo(new[] { 2, 3 }), "the GPU and the calls named; no GC lane without GC spans");

            var host = spans.Single(e => e.GetProperty("pid").GetInt32() == 1);
            Assert.That(host.GetProperty("ts").GetDouble(), Is.EqualTo(1e6));
            Assert.That(host.GetProperty("dur").GetDouble(), Is.EqualTo(5e5));

            var call = spans.Single(e => e.GetProperty("pid").GetInt32() == 3);
            Assert.That(call.GetProperty("name").GetString(), Is.EqualTo("cuLaunchKernel"));
            Assert.That(call.GetProperty("tid").GetInt64(), Is.EqualTo(4242), "a driver call on its host thread's lane");
            var kernel = spans.Single(e => e.GetProperty("name").GetString() == "gemm_kernel");
            Assert.That(kernel.GetProperty("pid").GetInt32(), Is.EqualTo(2));
            Assert.That(kernel.GetProperty("ts").GetDouble(), Is.EqualTo(1100010).Within(0.05), "a tenth of a microsecond kept");
            Assert.That(kernel.GetProperty("dur").GetDouble(), Is.EqualTo(3.5).Within(0.05));
            Assert.That(kernel.GetProperty("args").GetProperty("correlation").GetInt64(), Is.EqualTo(7), "tied to its launch");
            var copy = spans.Single(e => e.GetProperty("name").GetString() == "memcpy HtoD");
            Assert.That(copy.GetProperty("args").GetProperty("bytes").GetInt64(), Is.EqualTo(4096));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void WithoutDeviceSpansTheTraceHasOnlyTheConvertersSpans()
    {
        var timeline = new ConversionTimeline();
        timeline.Add("model.layers.0 forward", "module", 0.25, 0.125);
        string path = Path.Combine(Path.GetTempPath(), $"trellis-timeline-{Guid.NewGuid():N}.json");
        try
        {
            timeline.Write(path);
            using var trace = JsonDocument.Parse(File.ReadAllText(path));
            var events = trace.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
            Assert.That(events, Has.Count.EqualTo(1));
            Assert.That(events[0].GetProperty("pid").GetInt32(), Is.EqualTo(1));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// A forced compacting collection lands in the timeline as a pause on lane 0, named by its generation, reason and
    /// compaction, inside the time the test saw pass around it (the runtime's events arrive late, so they are waited for).
    /// </summary>
    [Test]
    public void GarbageCollectionPausesAreRecordedAsSpansOnTheirOwnLane()
    {
        var timeline = new ConversionTimeline();
        using var recorder = GcPauseRecorder.Start(timeline);
        double before = timeline.Now;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        double after = timeline.Now;
        ConversionTimeline.Span[] pauses = [];
        for (int wait = 0; wait < 100 && pauses.Length == 0; wait++)
        {
            Thread.Sleep(50);
            pauses = [.. timeline.Spans.Where(s => s.Category == "gc" && s.Name == "gen2 induced-compacting compacting GC")];
        }
        // Another test's forced compaction could land here too; this one's lies within the time around it.
        Assert.That(pauses, Is.Not.Empty, string.Join("; ", timeline.Spans.Select(s => s.Name)));
        Assert.That(pauses.Any(p => p.Thread == 0 && p.Start >= before - 0.005 && p.Start + p.Seconds <= after + 0.005 && p.Seconds > 0), Is.True,
            $"window [{before:F4}, {after:F4}]: " + string.Join("; ", pauses.Select(p => $"{p.Start:F4}+{p.Seconds:F4}")));
    }
}
