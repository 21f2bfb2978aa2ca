using System.Buffers.Binary;
using System.Text.Json;
using Converter.Formats.IO;

namespace Converter.Formats.Safetensors;

/// <summary>
/// Writes one safetensors file: tensors in insertion order, back to back, after a minified JSON header padded with
/// spaces to a multiple of 8 bytes (as the reference implementation does, so the data section is 8-byte aligned).
/// The file is written atomically (<see cref="AtomicFile"/>); the output is a pure function of the inputs.
/// </summary>
public sealed class SafetensorsWriter
{
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>The <c>__metadata__</c> string map; omitted from the header when empty.</summary>
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<PendingTensor> Tensors => _tensors;

    /// <summary>Sum of the tensors' byte lengths (the data section size).</summary>
    public long DataBytes { get; private set; }

    public void Add(PendingTensor tensor)
    {
        if (!_names.Add(tensor.Name))
            throw new ArgumentException($"tensor '{tensor.Name}' added twice", nameof(tensor));
        _tensors.Add(tensor);
        DataBytes += tensor.ByteLength;
    }

    /// <summary>Raw little-endian bytes of any dtype (a separate name: with byte[] an Add overload would bind to Add&lt;byte&gt;).</summary>
    public void AddBytes(string name, DType dtype, long[] shape, ReadOnlyMemory<byte> data) =>
        Add(PendingTensor.FromBytes(name, dtype, shape, data));

    /// <summary>Exact values whose type has the dtype's size (short for I16, Half for F16, ushort bits for BF16, ...).</summary>
    public void Add<T>(string name, DType dtype, long[] shape, T[] data) where T : unmanaged =>
        Add(PendingTensor.FromArray(name, dtype, shape, data));

    /// <summary>Float32 values stored as F32, F16 or BF16; the array is referenced until written (<see cref="PendingTensor.FromFloat32(string, long[], float[], DType)"/>).</summary>
    public void AddFloat32(string name, long[] shape, float[] values, DType storeAs = DType.F32) =>
        Add(PendingTensor.FromFloat32(name, shape, values, storeAs));

    /// <summary>Writes the file atomically, replacing any existing file at <paramref name="path"/>.</summary>
    public void Write(string path) => Write(path, _tensors, Metadata);

    internal static void Write(string path, IReadOnlyList<PendingTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var header = BuildHeader(tensors, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var t in tensors)
            {
                var start = stream.Position;
                t.WriteTo(stream);
                var written = stream.Position - start;
                if (written != t.ByteLength)
                    throw new InvalidOperationException($"{path}: tensor '{t.Name}': producer wrote {written} bytes, shape ({string.Join(", ", t.Shape)}) of {t.DType} needs {t.ByteLength}");
            }
        });
    }

    private static byte[] BuildHeader(IReadOnlyList<PendingTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (var d in t.Shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.ByteLength;
            }
            json.WriteEndObject();
        }
        var padding = (int)((8 - buffer.Length % 8) % 8);
        for (var i = 0; i < padding; i++)
            buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
