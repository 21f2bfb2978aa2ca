namespace Converter.Conversion.Pipeline;

/// <summary>
/// Hands the memory of a finished step's large arrays to the next step. A conversion allocates arrays of hundreds
/// of MB per linear (weights, targets, Hessians, LDLQ results) and per forward chunk; the GC's large-object budget
/// lets the heap grow with fresh memory instead of collecting first, and fresh memory is zero-filled by the kernel one
/// 4 KiB page fault at a time on first touch: 1.5–2.7 s per GB on the virtual machines we measured (the whole
/// "other" time of a llama-3-8b layer), against ~0.04 s per GB for memory the GC keeps mapped
/// and hands out again after a collection.
/// </summary>
public static class HeapReuse
{
    /// <summary>
    /// A full, blocking, non-compacting collection at a point where a step's arrays have just become garbage. It
    /// costs milliseconds: the heap is a few thousand arrays of floats, which hold no references to trace.
    /// </summary>
    public static void ReleaseFinishedStep() => GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
}
