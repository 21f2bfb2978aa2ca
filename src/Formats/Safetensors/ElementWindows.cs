namespace Converter.Formats.Safetensors;

/// <summary>
/// Splits a run of elements into windows of at most <see cref="DefaultBytes"/>, so tensors of any size are read,
/// converted and written a window at a time: a span addresses at most 2 GiB (a 70B's bf16 embedding is 2.1 GB, its
/// calibration state 8.6 GB), and each window's element count and byte count fit in an int.
/// </summary>
public static class ElementWindows
{
    /// <summary>Bytes per window: large enough that per-window overhead vanishes, small enough for a scratch buffer.</summary>
    public const int DefaultBytes = 16 << 20;

    /// <summary>
    /// (first element, element count) of consecutive windows covering <paramref name="elements"/> elements of
    /// <paramref name="elementSize"/> bytes, each at most <paramref name="windowBytes"/> bytes (at least one element).
    /// </summary>
    public static IEnumerable<(long First, int Count)> Over(long elements, int elementSize, int windowBytes = DefaultBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elements);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elementSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(windowBytes);
        int perWindow = Math.Max(1, windowBytes / elementSize);
        for (long first = 0; first < elements; first += perWindow)
            yield return (first, (int)Math.Min(perWindow, elements - first));
    }
}
