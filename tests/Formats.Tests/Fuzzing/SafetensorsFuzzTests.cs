using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Converter.Formats.Safetensors;
using Converter.Formats.Tests.Safetensors;
using Converter.TestSupport;
using Converter.TestSupport.Fuzzing;

namespace Converter.Formats.Tests.Fuzzing;

/// <summary>
/// Issue 15 part 4: seeded mutations of a small safetensors file (tensors of every dtype, a scalar, an empty tensor,
/// metadata) — its header text, header length field, header bytes and data section — must each open and read back
/// tensors of consistent size, or fail with a one-line <see cref="SafetensorsFormatException"/> naming the file.
/// </summary>
public class SafetensorsFuzzTests
{
    private const int Seed = 15_4;
    private const int CaseCount = 1500;
    private const string FileName = "fuzz.safetensors";

    [Test]
    public void MutatedFilesOpenOrFailWithTheOneLineError()
    {
        using var dir = new TempDirectory("trellis-fuzz-st-");
        var path = dir.File(FileName);
        var (header, data) = BaseFile();
        var run = new FuzzRun("safetensors", TimeSpan.FromSeconds(10), 64L << 20);
        for (int i = 0; i < CaseCount; i++)
        {
            var random = new Random(Seed * 100_003 + i);
            var (bytes, what) = MutateFile(header, data, random);
            File.WriteAllBytes(path, bytes);
            run.Case($"case {i}: {what}", () => OpenAndReadAll(path, dir.Path), e => FuzzRun.UserError(e, path, typeof(SafetensorsFormatException)));
        }
        run.AssertClean(minAccepted: CaseCount / 10, minRejected: CaseCount / 2);
    }

    /// <summary>Opens the file both ways, reads every tensor, and checks that what the header promised is what was read.</summary>
    internal static void OpenAndReadAll(string path, string directory)
    {
        var before = Directory.GetFileSystemEntries(directory);
        var header = SafetensorsHeader.Read(path);
        using (var file = SafetensorsFile.Open(path))
        {
            if (file.TensorNames.Count != header.Tensors.Count)
                throw new InvalidOperationException("SafetensorsHeader.Read and SafetensorsFile.Open disagree");
            foreach (var name in file.TensorNames)
                ReadBack(file, name, file.Length);
        }
        if (!Directory.GetFileSystemEntries(directory).SequenceEqual(before))
            throw new InvalidOperationException("reading wrote to the directory");
    }

    /// <summary>Reads one tensor as float32 and as raw elements; any inconsistency is a bug, not bad input.</summary>
    internal static void ReadBack(ITensorReader reader, string name, long fileLength)
    {
        var info = reader.Info(name);
        if (info.ByteLength != info.ElementCount * info.DType.ElementSize() || info.DataOffset < 8 || info.DataOffset + info.ByteLength > fileLength)
            throw new InvalidOperationException($"tensor '{name}' ({info}) at {info.DataOffset}+{info.ByteLength} is inconsistent in a file of {fileLength} bytes");
        var values = reader.ReadFloat32(name);
        if (values.LongLength != info.ElementCount)
            throw new InvalidOperationException($"tensor '{name}' read {values.Length} values of {info.ElementCount}");
        if (info.DType.ElementSize() == 2)
            _ = reader.ReadRaw<ushort>(name);
        _ = reader.RawBytes(name).Length;
    }

    /// <summary>Tensors of every dtype, a scalar and an empty tensor.</summary>
    internal static (string Header, byte[] Data) BaseFile() => Build(
    [
        ("a.f32", "F32", [2, 3]), ("b.f16", "F16", [4]), ("c.bf16", "BF16", [2, 2]), ("d.i8", "I8", [3]), ("e.i16", "I16", [2]),
        ("f.i32", "I32", [1, 2]), ("g.i64", "I64", [2]), ("h.u8", "U8", [5]), ("i.bool", "BOOL", [3]), ("j.scalar", "F32", []),
        ("k.empty", "F32", [0, 4]),
    ]);

    /// <summary>Header text and a gap-free data section of random bytes for the tensors; metadata first, as transformers writes it.</summary>
    internal static (string Header, byte[] Data) Build((string Name, string DType, int[] Shape)[] tensors)
    {
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (var (name, dtype, shape) in tensors)
        {
            DTypes.TryParse(dtype, out var parsed);
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * parsed.ElementSize();
            header.Append($",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        header.Append('}');
        var data = new byte[offset];
        new Random(Seed).NextBytes(data);
        return (header.ToString(), data);
    }

    /// <summary>One mutation of the file made of <paramref name="header"/> and <paramref name="data"/>: of its header text, length field, header bytes or data.</summary>
    internal static (byte[] Bytes, string What) MutateFile(string header, byte[] data, Random random)
    {
        var original = RawSafetensors.Build(header, data);
        int headerEnd = 8 + Encoding.UTF8.GetByteCount(header);
        switch (random.Next(100))
        {
            case < 40:
                {
                    var (json, what) = JsonMutator.Mutate(Encoding.UTF8.GetBytes(header), random);
                    return (Assemble(json, data), "header JSON: " + what);
                }
            case < 48:
                {
                    // The header changes but the length field does not: the JSON is cut or runs into the data.
                    var (json, what) = JsonMutator.Mutate(Encoding.UTF8.GetBytes(header), random);
                    var bytes = Assemble(json, data);
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(headerEnd - 8));
                    return (bytes, "header JSON, old length field: " + what);
                }
            case < 60:
                return LengthField(original, headerEnd, random);
            case < 72:
                {
                    var (bytes, what) = ByteMutator.Mutate(original, 8, headerEnd, random);
                    return (bytes, "header bytes: " + what);
                }
            case < 82:
                {
                    var (bytes, what) = ByteMutator.Mutate(original, headerEnd, original.Length, random);
                    return (bytes, "data bytes: " + what);
                }
            default:
                {
                    var (json, what) = TargetedEdit(header, data.Length, random);
                    return (Assemble(Encoding.UTF8.GetBytes(json), data), "header edit: " + what);
                }
        }
    }

    private static byte[] Assemble(byte[] json, byte[] data)
    {
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return bytes;
    }

    private static (byte[], string) LengthField(byte[] original, int headerEnd, Random random)
    {
        ulong n = (ulong)(headerEnd - 8);
        ulong[] values =
        [
            0, 1, 2, n - 1, n + 1, n + 7, n + 8, (ulong)original.Length - 8, (ulong)original.Length - 7, (ulong)original.Length,
            SafetensorsHeader.MaxHeaderBytes, SafetensorsHeader.MaxHeaderBytes + 1, int.MaxValue, (ulong)int.MaxValue + 1,
            uint.MaxValue + n + 1, 1UL << 63, ulong.MaxValue, ulong.MaxValue - 7,
        ];
        var value = values[random.Next(values.Length)];
        var bytes = (byte[])original.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return (bytes, $"length field {n} → {value}");
    }

    /// <summary>
    /// Edits a generic JSON mutation rarely lands on: a huge tensor declared consistently (shape and offsets agree),
    /// overlapping or out-of-range offsets, a dtype of the same or another size, negative dimensions whose product is
    /// positive, odd tensor names.
    /// </summary>
    private static (string Json, string What) TargetedEdit(string header, long dataLength, Random random)
    {
        var root = JsonNode.Parse(header)!.AsObject();
        var names = root.Select(p => p.Key).Where(k => k != "__metadata__").ToList();
        var name = names[random.Next(names.Count)];
        var entry = root[name]!.AsObject();
        long begin = entry["data_offsets"]![0]!.GetValue<long>(), end = entry["data_offsets"]![1]!.GetValue<long>();
        string what;
        switch (random.Next(10))
        {
            case 0:
                {
                    long dim = random.Next(2) == 0 ? 1_000_000 : 3_037_000_499; // 10¹² elements, or just under 2^63 with two dims
                    entry["shape"] = new JsonArray(dim, dim);
                    entry["dtype"] = "U8";
                    entry["data_offsets"] = new JsonArray(begin, begin + dim * dim);
                    what = $"'{name}' declares {dim}×{dim} U8";
                    break;
                }
            case 1:
                {
                    var other = root[names[random.Next(names.Count)]]!["data_offsets"]!.DeepClone();
                    entry["data_offsets"] = other;
                    what = $"'{name}' takes offsets {other.ToJsonString()}";
                    break;
                }
            case 2:
                {
                    long[] ends = [dataLength + 1, dataLength + 8, long.MaxValue, -1, begin - 1, end + 1];
                    var e = ends[random.Next(ends.Length)];
                    entry["data_offsets"] = new JsonArray(begin, e);
                    what = $"'{name}' ends at {e}";
                    break;
                }
            case 3:
                {
                    string[] dtypes = ["F32", "F16", "BF16", "I8", "I16", "I32", "I64", "U8", "BOOL", "F64", "U16", "F8_E5M2", "bf16", "", "F32 "];
                    var d = dtypes[random.Next(dtypes.Length)];
                    entry["dtype"] = d;
                    what = $"'{name}' dtype → \"{d}\"";
                    break;
                }
            case 4:
                {
                    long count = entry["shape"]!.AsArray().Aggregate(1L, (a, n) => a * n!.GetValue<long>());
                    entry["shape"] = new JsonArray(-1, -count);
                    what = $"'{name}' shape → [-1, {-count}]";
                    break;
                }
            case 5:
                {
                    entry["shape"] = new JsonArray(0, long.MaxValue);
                    entry["data_offsets"] = new JsonArray(begin, begin);
                    what = $"'{name}' shape → [0, {long.MaxValue}] at [{begin}, {begin}]";
                    break;
                }
            case 6:
                {
                    string[] odd = ["", "__metadata__", "a\nb", "a\u0000b", "../x", new string('n', 300), "ü\u200bÿ", LoneSurrogate];
                    var n = odd[random.Next(odd.Length)];
                    root.Remove(name);
                    root[n] = entry;
                    what = $"'{name}' renamed to {JsonValue.Create(n)!.ToJsonString()}";
                    if (random.Next(2) == 0)
                    {
                        // ... and broken, so that the error message has to carry the odd name.
                        entry["dtype"] = "X";
                        what += " with dtype X";
                    }
                    break;
                }
            case 7:
                root.Remove(name);
                what = $"'{name}' removed (a gap in the data)";
                break;
            case 8:
                {
                    entry["shape"] = new JsonArray(Enumerable.Range(0, random.Next(2) == 0 ? 64 : 10_000).Select(_ => (JsonNode?)JsonValue.Create(1)).ToArray());
                    what = $"'{name}' shape gets many dimensions of 1";
                    break;
                }
            default:
                {
                    root["__metadata__"] = random.Next(2) == 0 ? new JsonObject { ["format"] = 1, ["x"] = new JsonArray() } : JsonValue.Create("pt");
                    what = $"metadata → {root["__metadata__"]!.ToJsonString()}";
                    break;
                }
        }
        // A .NET string cannot hold the escape "\ud800" alone through the serializer; it is spliced into the text.
        return (root.ToJsonString().Replace(LoneSurrogate, "\\ud800", StringComparison.Ordinal), what);
    }

    private const string LoneSurrogate = "LONE-SURROGATE";
}
