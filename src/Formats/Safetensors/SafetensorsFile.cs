using System.IO.MemoryMappedFiles;

namespace Converter.Formats.Safetensors;

/// <summary>
/// One safetensors file, memory-mapped read-only: opening parses and validates the header only, and each read
/// touches only the pages of the tensor asked for, so a reader of a large checkpoint costs no memory up front.
/// </summary>
public sealed unsafe class SafetensorsFile : ITensorReader
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Dictionary<string, TensorInfo> _byName;
    private byte* _base;

    private SafetensorsFile(string path, long length, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, SafetensorsHeader header)
    {
        Path = path;
        Length = length;
        _map = map;
        _view = view;
        _base = basePtr;
        Tensors = header.Tensors;
        TensorNames = header.Tensors.Select(t => t.Name).ToArray();
        Metadata = header.Metadata;
        _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path { get; }

    /// <summary>File size in bytes.</summary>
    public long Length { get; }

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    public IReadOnlyList<string> TensorNames { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates a file; throws <see cref="SafetensorsFormatException"/> naming the file when it is malformed.</summary>
    public static SafetensorsFile Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        var acquired = false;
        try
        {
            var length = stream.Length;
            // An empty file cannot be mapped; let the header check report it as truncated.
            if (length < 8)
                SafetensorsHeader.ReadHeaderLength(path, stackalloc byte[8], length);

            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* basePtr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            acquired = true;
            basePtr += view.PointerOffset;

            var headerLength = SafetensorsHeader.ReadHeaderLength(path, new ReadOnlySpan<byte>(basePtr, 8), length);
            var json = new ReadOnlySpan<byte>(basePtr + 8, (int)headerLength).ToArray();
            var header = SafetensorsHeader.Parse(path, json, length - 8 - headerLength);
            return new SafetensorsFile(path, length, map, view, basePtr, header);
        }
        catch
        {
            if (acquired)
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorInfo Info(string name) =>
        _byName.TryGetValue(name, out var info) ? info : throw new SafetensorsFormatException(Path, name, "not found in file");

    public string FileOf(string name) => Contains(name) ? Path : throw new SafetensorsFormatException(Path, name, "not found in file");

    public ReadOnlySpan<byte> RawBytes(string name, long offset, int length)
    {
        var info = Info(name);
        ObjectDisposedException.ThrowIf(_base == null, this);
        if (offset < 0 || length < 0 || offset > info.ByteLength - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes [{offset}, {offset + length}) are outside tensor '{name}' of {info.ByteLength} bytes");
        return new ReadOnlySpan<byte>(_base + info.DataOffset + offset, length);
    }

    public void ReleaseResidentPages()
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        // The mapping starts on a page boundary, PointerOffset before _base; its whole length is advised at once.
        byte* start = _base - _view.PointerOffset;
        MappedPages.Release(start, (nuint)(Length + _view.PointerOffset));
    }

    public void Dispose()
    {
        if (_base == null)
            return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    public override string ToString() => $"{Path} ({Tensors.Count} tensors)";
}
