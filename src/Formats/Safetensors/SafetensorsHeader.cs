using System.Text.Json;
using Converter.Formats.IO;

namespace Converter.Formats.Safetensors;

/// <summary>
/// The parsed and validated JSON header of a safetensors file: layout is an 8-byte little-endian header
/// length N, N bytes of UTF-8 JSON, then the data section that all <c>data_offsets</c> are relative to.
/// Validation happens here, once, so that readers can trust every <see cref="TensorInfo"/> they hand out.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>Same cap as the reference implementation (safetensors' MAX_HEADER_SIZE), against absurd lengths.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>A header is an object of objects of arrays; deeper nesting is not a header.</summary>
    private const int HeaderMaxDepth = 16;

    private SafetensorsHeader(IReadOnlyList<TensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> map (empty when absent). Non-string values are kept as their JSON text.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>
    /// Reads the header length from the first 8 bytes of a file of <paramref name="fileLength"/> bytes and checks it.
    /// Returns N, the JSON length; the data section starts at 8 + N.
    /// </summary>
    public static long ReadHeaderLength(string path, ReadOnlySpan<byte> first8, long fileLength)
    {
        if (fileLength < 8)
            throw new SafetensorsFormatException(path, $"file is {fileLength} bytes, too short for the 8-byte header length (truncated?)");
        var n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(first8);
        if (n > MaxHeaderBytes)
            throw new SafetensorsFormatException(path, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit (not a safetensors file?)");
        if (8 + (long)n > fileLength)
            throw new SafetensorsFormatException(path, $"header length {n} runs past the end of the file ({fileLength} bytes; truncated?)");
        return (long)n;
    }

    /// <summary>
    /// Reads and validates the header of the file at <paramref name="path"/> alone, without mapping the data (e.g. to
    /// list a checkpoint's tensors before opening it).
    /// </summary>
    public static SafetensorsHeader Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        Span<byte> first8 = stackalloc byte[8];
        stream.ReadAtLeast(first8, first8.Length, throwOnEndOfStream: false);
        var headerLength = ReadHeaderLength(path, first8, stream.Length);
        var json = new byte[headerLength];
        stream.ReadExactly(json);
        return Parse(path, json, stream.Length - 8 - headerLength);
    }

    /// <summary>Parses and validates the JSON header against a data section of <paramref name="dataLength"/> bytes.</summary>
    public static SafetensorsHeader Parse(string path, ReadOnlyMemory<byte> json, long dataLength)
    {
        JsonDocument doc;
        try
        {
            if (JsonStringCheck.FindUndecodableString(json.Span, HeaderMaxDepth) is { } undecodable)
                throw new SafetensorsFormatException(path, $"header is not valid JSON text: {undecodable}");
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = HeaderMaxDepth });
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(path, $"header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(path, $"header is a JSON {doc.RootElement.ValueKind}, expected an object");

            var tensors = new List<TensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
            var dataStart = 8 + json.Length;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                // JsonDocument tolerates duplicate keys; a duplicated tensor name would make lookups ambiguous.
                if (!seen.Add(prop.Name))
                    throw new SafetensorsFormatException(path, $"header has duplicate key '{prop.Name}'");
                if (prop.Name == MetadataKey)
                    metadata = ParseMetadata(path, prop.Value);
                else
                    tensors.Add(ParseTensor(path, prop.Name, prop.Value, dataStart, dataLength));
            }
            CheckNoOverlap(path, tensors);
            return new SafetensorsHeader(tensors, metadata);
        }
    }

    private static Dictionary<string, string> ParseMetadata(string path, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, $"{MetadataKey} is a JSON {value.ValueKind}, expected an object");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in value.EnumerateObject())
            result[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        return result;
    }

    private static TensorInfo ParseTensor(string path, string name, JsonElement entry, long dataStart, long dataLength)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, name, $"entry is a JSON {entry.ValueKind}, expected an object");

        if (!entry.TryGetProperty("dtype", out var dtypeElement))
            throw new SafetensorsFormatException(path, name, "missing dtype");
        if (dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(path, name, $"dtype is a JSON {dtypeElement.ValueKind}, expected a string");
        var dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParse(dtypeName, out var dtype))
            throw new SafetensorsFormatException(path, name, $"unknown or unsupported dtype '{dtypeName}'");

        var shape = ReadLongArray(path, name, entry, "shape");
        foreach (var d in shape)
        {
            if (d < 0)
                throw new SafetensorsFormatException(path, name, $"negative dimension in shape ({string.Join(", ", shape)})");
        }

        var offsets = ReadLongArray(path, name, entry, "data_offsets");
        if (offsets.Length != 2)
            throw new SafetensorsFormatException(path, name, $"data_offsets has {offsets.Length} entries, expected [begin, end]");
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin < 0 || end < begin)
            throw new SafetensorsFormatException(path, name, $"data_offsets [{begin}, {end}] are not an ascending range");
        if (end > dataLength)
            throw new SafetensorsFormatException(path, name, $"data_offsets [{begin}, {end}] run past the data section ({dataLength} bytes; truncated?)");

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => a * b) * dtype.ElementSize());
        }
        catch (OverflowException)
        {
            throw new SafetensorsFormatException(path, name, $"shape ({string.Join(", ", shape)}) is too large");
        }
        if (expected != end - begin)
        {
            throw new SafetensorsFormatException(path, name,
                $"shape ({string.Join(", ", shape)}) of {dtypeName} needs {expected} bytes but data_offsets [{begin}, {end}] give {end - begin}");
        }

        return new TensorInfo(name, dtype, shape, dataStart + begin, end - begin);
    }

    private static long[] ReadLongArray(string path, string name, JsonElement entry, string key)
    {
        if (!entry.TryGetProperty(key, out var array))
            throw new SafetensorsFormatException(path, name, $"missing {key}");
        if (array.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(path, name, $"{key} is a JSON {array.ValueKind}, expected an array of integers");
        var result = new long[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out result[i]))
                throw new SafetensorsFormatException(path, name, $"{key} holds {item.GetRawText()}, expected integers");
            i++;
        }
        return result;
    }

    /// <summary>Two tensors sharing bytes would alias on read and betray a corrupt or hostile header.</summary>
    private static void CheckNoOverlap(string path, List<TensorInfo> tensors)
    {
        var byOffset = tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.DataOffset).ToArray();
        for (var i = 1; i < byOffset.Length; i++)
        {
            var (prev, cur) = (byOffset[i - 1], byOffset[i]);
            if (cur.DataOffset < prev.DataOffset + prev.ByteLength)
                throw new SafetensorsFormatException(path, cur.Name, $"data overlaps tensor '{prev.Name}'");
        }
    }
}
