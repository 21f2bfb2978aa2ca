using System.Diagnostics.Tracing;

namespace Converter.Conversion.Reporting;

/// <summary>
/// The runtime's garbage-collection pauses, as spans of a <see cref="ConversionTimeline"/> (`convert --timeline`):
/// while the runtime is suspended no thread queues GPU work, so a pause is a gap in what the GPU runs (session 30's
/// CUPTI trace of an 8B layer showed 50–150 ms gaps with no driver call from any thread). Read in-process from the
/// runtime's own GC events: the suspension's start to the restart's end, with the collection's generation, reason
/// and whether it compacted.
/// </summary>
public sealed class GcPauseRecorder : EventListener
{
    private const string RuntimeSource = "Microsoft-Windows-DotNETRuntime";
    private const EventKeywords GcKeyword = (EventKeywords)0x1;

    // Event ids of the runtime's GC events (ClrEtwAll.man): GCStart_V2, GCRestartEEEnd, GCSuspendEEBegin, GCGlobalHeapHistory.
    private const int GcStart = 1, RestartEnd = 3, SuspendBegin = 9, GlobalHeapHistory = 205;

    /// <summary>GCGlobalHeapHistory's GlobalMechanisms bit for a compacting collection.</summary>
    private const int CompactionMechanism = 0x2;

    private static readonly string[] Reasons =
    [
        "small-alloc", "induced", "low-memory", "empty", "large-alloc", "oos-small", "oos-large", "induced-noforce", "stress",
        "low-memory-induced", "induced-compacting", "low-memory-host", "pm-full", "low-memory-host-blocking", "background-alloc",
    ];

    private readonly Lock _gate = new();
    private ConversionTimeline? _timeline;
    private DateTime _timelineStartUtc;
    private DateTime? _suspended;
    private string _collection = "";
    private bool _compacting;

    /// <summary>Starts recording into <paramref name="timeline"/> from now.</summary>
    public static GcPauseRecorder Start(ConversionTimeline timeline)
    {
        var recorder = new GcPauseRecorder();
        lock (recorder._gate)
        {
            recorder._timelineStartUtc = DateTime.UtcNow - TimeSpan.FromSeconds(timeline.Now);
            recorder._timeline = timeline;
        }
        return recorder;
    }

    // Runs from the base constructor, before this type's fields are set: it may only enable events.
    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == RuntimeSource)
            EnableEvents(source, EventLevel.Informational, GcKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        lock (_gate)
        {
            if (_timeline is null)
                return;
            switch (e.EventId)
            {
                case SuspendBegin:
                    _suspended = e.TimeStamp.ToUniversalTime();
                    _collection = "";
                    _compacting = false;
                    break;
                case GcStart:
                    uint depth = Payload<uint>(e, "Depth");
                    uint reason = Payload<uint>(e, "Reason");
                    _collection = $"gen{depth} {(reason < Reasons.Length ? Reasons[reason] : $"reason-{reason}")}";
                    break;
                case GlobalHeapHistory:
                    _compacting |= (Payload<uint>(e, "GlobalMechanisms") & CompactionMechanism) != 0;
                    break;
                case RestartEnd when _suspended is { } began:
                    double start = (began - _timelineStartUtc).TotalSeconds;
                    double seconds = (e.TimeStamp.ToUniversalTime() - began).TotalSeconds;
                    // A suspension with no collection in it (the runtime suspends for other reasons too) is named as such.
                    string name = _collection.Length == 0 ? "runtime suspension GC" : $"{_collection}{(_compacting ? " compacting" : "")} GC";
                    _timeline.Add(name, "gc", start, seconds, thread: 0);
                    _suspended = null;
                    break;
            }
        }
    }

    private static T Payload<T>(EventWrittenEventArgs e, string name) where T : struct
    {
        int index = e.PayloadNames?.IndexOf(name) ?? -1;
        return index >= 0 && e.Payload?[index] is { } value ? (T)Convert.ChangeType(value, typeof(T), System.Globalization.CultureInfo.InvariantCulture) : default;
    }
}
