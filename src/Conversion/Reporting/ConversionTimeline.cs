using System.Diagnostics;
using System.Text.Json;
using Converter.Formats.IO;

namespace Converter.Conversion.Reporting;

/// <summary>
/// Where a conversion's time went, span by span (a module's capture, quantize and forward; each linear's stages on the
/// thread that ran it), written as a Chrome trace-event file (`convert --timeline FILE`; open it in Perfetto or
/// chrome://tracing). Its start as Unix time lets samples taken beside the job (nvidia-smi's utilization) be laid on
/// the same axis: per-stage seconds in the log say how long each step took, not which steps left the GPU idle together.
/// </summary>
public sealed class ConversionTimeline
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private readonly List<Span> _spans = [];
    private readonly List<DeviceSpan> _deviceSpans = [];
    private readonly Lock _gate = new();

    /// <summary>One finished span: seconds since the timeline started, on the managed thread that ran it.</summary>
    public readonly record struct Span(string Name, string Category, int Thread, double Start, double Seconds);

    /// <summary>
    /// Work a GPU ran (<paramref name="OnDevice"/>: a kernel, copy or fill) or a driver call a host thread made, on the
    /// timeline's clock (`convert --timeline-gpu`). <paramref name="Correlation"/> ties a call to the work it queued.
    /// </summary>
    public readonly record struct DeviceSpan(string Name, bool OnDevice, long Lane, double Start, double Seconds, uint Correlation, long Bytes);

    /// <summary>Seconds since the timeline started.</summary>
    public double Now => _clock.Elapsed.TotalSeconds;

    public IReadOnlyList<Span> Spans
    {
        get
        {
            lock (_gate)
                return [.. _spans];
        }
    }

    /// <summary>
    /// Records a span that began at <paramref name="start"/> (<see cref="Now"/> then) and lasted <paramref name="seconds"/>,
    /// on this thread or on the lane <paramref name="thread"/> names (0: the runtime's GC pauses, <see cref="GcPauseRecorder"/>).
    /// </summary>
    public void Add(string name, string category, double start, double seconds, int? thread = null)
    {
        var span = new Span(name, category, thread ?? Environment.CurrentManagedThreadId, start, Math.Max(0, seconds));
        lock (_gate)
            _spans.Add(span);
    }

    /// <summary>Records what a GPU ran and the driver calls beside it (written as processes 2 and 3 of the trace).</summary>
    public void AddDevice(IEnumerable<DeviceSpan> spans)
    {
        lock (_gate)
            _deviceSpans.AddRange(spans);
    }

    /// <summary>Records consecutive stages that began at <paramref name="start"/>, each as long as its seconds.</summary>
    public void AddStages(string owner, string category, double start, IEnumerable<(string Stage, double Seconds)> stages)
    {
        double at = start;
        foreach (var (stage, seconds) in stages)
        {
            Add($"{owner} {stage}", category, at, seconds);
            at += seconds;
        }
    }

    /// <summary>Writes the spans so far (atomically: a later write replaces an earlier one whole).</summary>
    public void Write(string path)
    {
        var spans = Spans;
        DeviceSpan[] device;
        lock (_gate)
            device = [.. _deviceSpans];
        AtomicFile.Write(path, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
            json.WriteStartObject();
            json.WriteString("displayTimeUnit", "ms");
            json.WriteStartObject("otherData");
            json.WriteNumber("start_unix_s", _started.ToUnixTimeMilliseconds() / 1000.0);
            json.WriteEndObject();
            json.WriteStartArray("traceEvents");
            foreach (var s in spans.OrderBy(s => s.Start))
            {
                WriteSpan(json, s.Name, s.Category, 1, s.Thread, s.Start, s.Seconds, digits: 0);
                json.WriteEndObject();
            }
            if (spans.Any(s => s.Thread == 0))
                WriteName(json, "thread_name", 1, 0, "GC pauses (every thread stopped)");
            if (device.Length > 0)
            {
                WriteName(json, "process_name", 2, null, "GPU (kernels, copies, fills)");
                WriteName(json, "process_name", 3, null, "CUDA driver and runtime calls");
            }
            foreach (var d in device)
            {
                // Device spans are microseconds long, so they keep a tenth of a microsecond.
                WriteSpan(json, d.Name, d.OnDevice ? "gpu" : "driver", d.OnDevice ? 2 : 3, d.Lane, d.Start, d.Seconds, digits: 1);
                json.WriteStartObject("args");
                json.WriteNumber("correlation", d.Correlation);
                if (d.Bytes > 0)
                    json.WriteNumber("bytes", d.Bytes);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary>
    /// Opens a complete event ("X" phase) and writes its fields, times in the format's microseconds rounded to
    /// <paramref name="digits"/> decimals; the caller may add more and closes it.
    /// </summary>
    private static void WriteSpan(Utf8JsonWriter json, string name, string category, int process, long thread, double start, double seconds, int digits)
    {
        json.WriteStartObject();
        json.WriteString("name", name);
        json.WriteString("cat", category);
        json.WriteString("ph", "X");
        json.WriteNumber("ts", Math.Round(start * 1e6, digits));
        json.WriteNumber("dur", Math.Round(seconds * 1e6, digits));
        json.WriteNumber("pid", process);
        json.WriteNumber("tid", thread);
    }

    /// <summary>A metadata event naming a process or one of its threads (the trace-event format's "M" phase).</summary>
    private static void WriteName(Utf8JsonWriter json, string kind, int process, int? thread, string name)
    {
        json.WriteStartObject();
        json.WriteString("name", kind);
        json.WriteString("ph", "M");
        json.WriteNumber("pid", process);
        if (thread is { } t)
            json.WriteNumber("tid", t);
        json.WriteStartObject("args");
        json.WriteString("name", name);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
