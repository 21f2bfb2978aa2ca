namespace Converter.Formats.Safetensors;

/// <summary>
/// Read access to named tensors, whether they live in one safetensors file or in the shards of a checkpoint.
/// Typed reads (<see cref="TensorReaderExtensions"/>) are built on <see cref="RawBytes"/>, once for both.
/// </summary>
public interface ITensorReader : IDisposable
{
    /// <summary>Every tensor name, in a stable order (header order, or the index's weight_map order).</summary>
    IReadOnlyList<string> TensorNames { get; }

    bool Contains(string name);

    /// <summary>The tensor's header entry; throws <see cref="SafetensorsFormatException"/> when absent.</summary>
    TensorInfo Info(string name);

    /// <summary>The file that holds the tensor, for messages such as "NaN in tensor X of file Y".</summary>
    string FileOf(string name);

    /// <summary>
    /// Bytes [<paramref name="offset"/>, offset + <paramref name="length"/>) of the tensor's data, straight from the
    /// memory map (no copy); valid only until the reader is disposed. A span addresses at most 2 GiB, so larger
    /// tensors are read a window at a time (<see cref="ElementWindows"/>).
    /// </summary>
    ReadOnlySpan<byte> RawBytes(string name, long offset, int length);

    /// <summary>
    /// Drops the pages read so far from this process's resident memory (they stay in the kernel's page cache, and a
    /// later read maps them again). A converter reads every weight once: without this, a 16 GB checkpoint's mapped pages
    /// are the likely cause of most of the 13 GiB by which a whole llama-3-8b conversion's 29 GiB peak RSS exceeded a
    /// 2-layer one's (docs/benchmarks.md). Readers without a mapping do nothing.
    /// </summary>
    void ReleaseResidentPages()
    {
    }
}
