using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

public class SafetensorsFileTests
{
    private static string TinyLlamaFile => Path.Combine(RepoPaths.SampleModel, "model.safetensors");

    [Test]
    public void TinyLlamaHeaderListsAllTensorsWithShapes()
    {
        using var file = SafetensorsFile.Open(TinyLlamaFile);

        // 4 layers × 9 tensors + embed, final norm, lm_head (tiny-llama is untied).
        Assert.That(file.Tensors, Has.Count.EqualTo(4 * 9 + 3));
        Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
        Assert.That(file.Tensors.Select(t => t.DType), Is.All.EqualTo(DType.BF16));
        Assert.That(file.Info("model.embed_tokens.weight").Shape, Is.EqualTo(new long[] { 4096, 256 }));
        Assert.That(file.Info("model.layers.0.self_attn.k_proj.weight").Shape, Is.EqualTo(new long[] { 128, 256 }));
        Assert.That(file.Info("model.norm.weight").Shape, Is.EqualTo(new long[] { 256 }));
        Assert.That(file.Contains("model.layers.4.mlp.up_proj.weight"), Is.False);
    }

    [Test]
    public void TinyLlamaValuesAreFiniteAndMatchBf16BitShift()
    {
        using var file = SafetensorsFile.Open(TinyLlamaFile);
        foreach (var info in file.Tensors)
        {
            var values = file.ReadFloat32(info.Name);
            Assert.That(values, Has.Length.EqualTo(info.ElementCount), info.Name);
            Assert.That(FiniteCheck.AllFinite(values), Is.True, info.Name);

            // Independent decode: little-endian bf16 bits shifted into the top half of a float32.
            var raw = file.RawBytes(info.Name);
            for (var i = 0; i < values.Length; i += 97)
            {
                var bits = BinaryPrimitives.ReadUInt16LittleEndian(raw.Slice(2 * i, 2));
                Assert.That(values[i], Is.EqualTo(BitConverter.Int32BitsToSingle(bits << 16)), $"{info.Name}[{i}]");
            }
        }
    }

    [Test]
    public void RawBytesMatchTheFileAtTheHeaderOffset()
    {
        using var file = SafetensorsFile.Open(TinyLlamaFile);
        var info = file.Info("model.layers.2.self_attn.v_proj.weight");

        var expected = new byte[info.ByteLength];
        using (var stream = File.OpenRead(TinyLlamaFile))
        {
            stream.Position = info.DataOffset;
            stream.ReadExactly(expected);
        }
        Assert.That(file.RawBytes(info.Name).ToArray(), Is.EqualTo(expected));
        Assert.That(MemoryMarshal.AsBytes(file.ReadRaw<ushort>(info.Name).AsSpan()).ToArray(), Is.EqualTo(expected));
    }

    [TestCase("rand-llama31", 2)]
    [TestCase("rand-mistral", 2)]
    [TestCase("rand-qwen3", 2)]
    public void RandomModelsReadFinite(string model, int layers)
    {
        using var file = SafetensorsFile.Open(Path.Combine(RepoPaths.TestModel(model), "model.safetensors"));
        Assert.That(file.Contains($"model.layers.{layers - 1}.mlp.down_proj.weight"), Is.True);
        foreach (var name in file.TensorNames)
            Assert.That(FiniteCheck.AllFinite(file.ReadFloat32(name)), Is.True, name);
    }

    [Test]
    public void KernelVectorsHaveTheDocumentedLayout()
    {
        using var file = SafetensorsFile.Open(Path.Combine(RepoPaths.Reference, "exl3-kernel-vectors.safetensors"));

        Assert.That(file.Info("mul1.k2.trellis"), Has.Property("DType").EqualTo(DType.I16).And.Property("Shape").EqualTo(new long[] { 16, 24, 32 }));
        Assert.That(file.Info("mul1.k2.states"), Has.Property("DType").EqualTo(DType.I16).And.Property("Shape").EqualTo(new long[] { 16, 24, 256 }));
        Assert.That(file.Info("mul1.k2.what"), Has.Property("DType").EqualTo(DType.F16).And.Property("Shape").EqualTo(new long[] { 256, 384 }));
        Assert.That(file.Info("3inst.k4.trellis").Shape, Is.EqualTo(new long[] { 16, 24, 64 }));

        // Raw reads keep the exact stored values; the float path widens the same values.
        var what = file.ReadRaw<Half>("mul1.k2.what");
        var whatF = file.ReadFloat32("mul1.k2.what");
        Assert.That(whatF, Is.EqualTo(what.Select(h => (float)h).ToArray()));
        var states = file.ReadRaw<short>("mul1.k2.states");
        Assert.That(file.ReadFloat32("mul1.k2.states"), Is.EqualTo(states.Select(s => (float)s).ToArray()));
    }

    [Test]
    public void ReadRawRejectsAWrongElementSizeNamingTheFile()
    {
        using var file = SafetensorsFile.Open(Path.Combine(RepoPaths.Reference, "exl3-kernel-vectors.safetensors"));
        var e = Assert.Throws<SafetensorsFormatException>(() => file.ReadRaw<int>("mul1.k2.trellis"));
        Assert.That(e!.Message, Does.Contain("exl3-kernel-vectors.safetensors").And.Contain("mul1.k2.trellis").And.Contain("I16"));
    }

    [Test]
    public void ReadFloat32IntoSpanChecksTheLength()
    {
        using var file = SafetensorsFile.Open(TinyLlamaFile);
        Assert.Throws<ArgumentException>(() => file.ReadFloat32("model.norm.weight", new float[255]));
        var dest = new float[256];
        file.ReadFloat32("model.norm.weight", dest);
        Assert.That(dest, Is.EqualTo(file.ReadFloat32("model.norm.weight")));
    }

    [Test]
    public void ReadsAfterDisposeThrow()
    {
        var file = SafetensorsFile.Open(TinyLlamaFile);
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.RawBytes("model.norm.weight"));
    }

    [Test]
    public void EveryDTypeDecodesToFloat32()
    {
        // One tensor per dtype with hand-encoded little-endian values, laid out back to back.
        var cases = new (string Name, string DType, byte[] Bytes, float[] Expected)[]
        {
            ("f32", "F32", MemoryMarshal.AsBytes<float>([1.5f, -2f]).ToArray(), [1.5f, -2f]),
            ("f16", "F16", MemoryMarshal.AsBytes<Half>([(Half)0.5f, (Half)(-3f)]).ToArray(), [0.5f, -3f]),
            ("bf16", "BF16", MemoryMarshal.AsBytes<ushort>([0x3FC0, 0xC000]).ToArray(), [1.5f, -2f]),
            ("i8", "I8", [0xFF, 0x7F], [-1f, 127f]),
            ("i16", "I16", MemoryMarshal.AsBytes<short>([-300, 300]).ToArray(), [-300f, 300f]),
            ("i32", "I32", MemoryMarshal.AsBytes<int>([-70000, 70000]).ToArray(), [-70000f, 70000f]),
            ("i64", "I64", MemoryMarshal.AsBytes<long>([-5, 1L << 40]).ToArray(), [-5f, 1099511627776f]),
            ("u8", "U8", [0, 255], [0f, 255f]),
            ("bool", "BOOL", [0, 1], [0f, 1f]),
        };
        var header = new List<string>();
        var data = new List<byte>();
        foreach (var c in cases)
        {
            header.Add($"\"{c.Name}\":{{\"dtype\":\"{c.DType}\",\"shape\":[2],\"data_offsets\":[{data.Count},{data.Count + c.Bytes.Length}]}}");
            data.AddRange(c.Bytes);
        }
        using var dir = new TempDirectory();
        var path = RawSafetensors.Write(dir, "all.safetensors", "{" + string.Join(",", header) + "}", data.ToArray());

        using var file = SafetensorsFile.Open(path);
        foreach (var c in cases)
            Assert.That(file.ReadFloat32(c.Name), Is.EqualTo(c.Expected), c.Name);
        Assert.That(file.Metadata, Is.Empty);
    }

    [Test]
    public void ScalarAndEmptyTensorsAreAllowed()
    {
        using var dir = new TempDirectory();
        var path = RawSafetensors.Write(dir, "s.safetensors",
            "{\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},\"empty\":{\"dtype\":\"F32\",\"shape\":[0,8],\"data_offsets\":[4,4]}}",
            MemoryMarshal.AsBytes<float>([7f]).ToArray());
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.ReadFloat32("scalar"), Is.EqualTo(new[] { 7f }));
        Assert.That(file.ReadFloat32("empty"), Is.Empty);
        Assert.That(file.TensorNames, Is.EqualTo(new[] { "scalar", "empty" }));
    }
}
