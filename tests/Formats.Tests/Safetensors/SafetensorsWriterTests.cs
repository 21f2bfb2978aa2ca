using System.Buffers.Binary;
using System.Text;
using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

public class SafetensorsWriterTests
{
    private static byte[] RandomBytes(int n, int seed)
    {
        var bytes = new byte[n];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Test]
    public void EveryDTypeRoundTripsByteExact()
    {
        using var dir = new TempDirectory();
        var path = dir.File("all.safetensors");
        var writer = new SafetensorsWriter();
        writer.Metadata["format"] = "pt";
        writer.Metadata["note"] = "round trip";
        var expected = new Dictionary<string, byte[]>();
        foreach (var dtype in DTypes.All)
        {
            // BOOL must hold 0/1 to be meaningful, but the format stores whatever bytes it is given.
            var bytes = RandomBytes(3 * 5 * dtype.ElementSize(), (int)dtype);
            writer.AddBytes($"t.{dtype}", dtype, [3, 5], bytes);
            expected[$"t.{dtype}"] = bytes;
        }
        writer.Write(path);

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.TensorNames, Is.EqualTo(expected.Keys), "insertion order");
        Assert.That(file.Metadata, Is.EquivalentTo(writer.Metadata));
        foreach (var dtype in DTypes.All)
        {
            var info = file.Info($"t.{dtype}");
            Assert.That(info.DType, Is.EqualTo(dtype));
            Assert.That(info.Shape, Is.EqualTo(new long[] { 3, 5 }));
            Assert.That(file.RawBytes(info.Name).ToArray(), Is.EqualTo(expected[info.Name]), info.Name);
        }
    }

    [Test]
    public void TypedArraysRoundTripThroughReadRaw()
    {
        using var dir = new TempDirectory();
        var path = dir.File("typed.safetensors");
        short[] states = [-32768, -1, 0, 1, 32767, 1234];
        Half[] halves = [(Half)1.5f, Half.NegativeInfinity, (Half)(-0.25f), Half.Epsilon];
        long[] longs = [long.MinValue, 0, long.MaxValue];
        var writer = new SafetensorsWriter();
        writer.Add("states", DType.I16, [2, 3], states);
        writer.Add("what", DType.F16, [4], halves);
        writer.Add("longs", DType.I64, [3], longs);
        writer.Add("scalar", DType.I32, [], new[] { 42 });
        writer.Write(path);

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.ReadRaw<short>("states"), Is.EqualTo(states));
        Assert.That(file.ReadRaw<Half>("what"), Is.EqualTo(halves));
        Assert.That(file.ReadRaw<long>("longs"), Is.EqualTo(longs));
        Assert.That(file.ReadRaw<int>("scalar"), Is.EqualTo(new[] { 42 }));
        Assert.That(file.Metadata, Is.Empty);
    }

    [Test]
    public void HeaderIsMinifiedAndDataIsEightByteAligned()
    {
        using var dir = new TempDirectory();
        var path = dir.File("a.safetensors");
        var writer = new SafetensorsWriter();
        writer.Metadata["format"] = "pt";
        writer.Add("x", DType.U8, [3], new byte[] { 1, 2, 3 });
        writer.Write(path);

        var bytes = File.ReadAllBytes(path);
        var n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That(n % 8, Is.Zero);
        var header = Encoding.UTF8.GetString(bytes, 8, n);
        Assert.That(header.TrimEnd(' '), Is.EqualTo("{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}"));
        Assert.That(bytes[(8 + n)..], Is.EqualTo(new byte[] { 1, 2, 3 }));
    }

    [Test]
    public void Float32StoredAsHalfOrBf16RoundsToNearestEven()
    {
        using var dir = new TempDirectory();
        var path = dir.File("f.safetensors");
        float[] values = [1f, 1.00390625f, 1.005859375f, -3.3f, 65519f, 1e-8f, float.NaN];
        var writer = new SafetensorsWriter();
        writer.AddFloat32("f32", [values.Length], values);
        writer.AddFloat32("f16", [values.Length], values, DType.F16);
        writer.AddFloat32("bf16", [values.Length], values, DType.BF16);
        writer.Write(path);

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.ReadFloat32("f32"), Is.EqualTo(values));
        Assert.That(file.ReadRaw<Half>("f16"), Is.EqualTo(values.Select(v => (Half)v).ToArray()));
        Assert.That(file.ReadRaw<ushort>("bf16"), Is.EqualTo(values.Select(BFloat16.FromSingle).ToArray()));
        // 1 + 2^-8 is a bf16 tie between 1 and 1 + 2^-7: even mantissa (1) wins.
        Assert.That(file.ReadFloat32("bf16")[1], Is.EqualTo(1f));
        Assert.Throws<ArgumentException>(() => writer.AddFloat32("i", [1], [1f], DType.I32));
    }

    [Test]
    public void OutputIsDeterministic()
    {
        using var dir = new TempDirectory();
        byte[] Write(string name)
        {
            var writer = new SafetensorsWriter();
            writer.Metadata["b"] = "2";
            writer.Metadata["a"] = "1";
            writer.AddFloat32("w", [2, 2], [1f, 2f, 3f, 4f], DType.BF16);
            writer.Write(dir.File(name));
            return File.ReadAllBytes(dir.File(name));
        }
        Assert.That(Write("one.safetensors"), Is.EqualTo(Write("two.safetensors")));
    }

    [Test]
    public void InvalidTensorsAreRejectedWhenAdded()
    {
        var writer = new SafetensorsWriter();
        writer.Add("a", DType.F32, [1], new float[1]);
        Assert.That(() => writer.Add("a", DType.F32, [1], new float[1]), Throws.ArgumentException.With.Message.Contains("twice"));
        Assert.That(() => writer.Add("b", DType.F32, [3], new float[2]), Throws.ArgumentException.With.Message.Contains("needs 12 bytes"));
        Assert.That(() => writer.Add("c", DType.I16, [2], new int[2]), Throws.ArgumentException.With.Message.Contains("Int32"));
        Assert.That(() => writer.Add("d", DType.U8, [-1], new byte[0]), Throws.ArgumentException.With.Message.Contains("negative"));
        Assert.That(() => writer.Add("__metadata__", DType.U8, [0], new byte[0]), Throws.ArgumentException);
        Assert.That(writer.Tensors, Has.Count.EqualTo(1));
    }

    [Test]
    public void CopyOfReproducesTheSourceTensors()
    {
        using var dir = new TempDirectory();
        using var source = SafetensorsFile.Open(Path.Combine(RepoPaths.SampleModel, "model.safetensors"));
        var writer = new SafetensorsWriter();
        foreach (var name in source.TensorNames)
            writer.Add(PendingTensor.CopyOf(source, name));
        writer.Add(PendingTensor.CopyOf(source, "model.norm.weight", "renamed.norm"));
        writer.Write(dir.File("copy.safetensors"));

        using var copy = SafetensorsFile.Open(dir.File("copy.safetensors"));
        foreach (var name in source.TensorNames)
            Assert.That(copy.RawBytes(name).SequenceEqual(source.RawBytes(name)), Is.True, name);
        Assert.That(copy.ReadFloat32("renamed.norm"), Is.EqualTo(source.ReadFloat32("model.norm.weight")));
    }

    [TestCase(DType.F32)]
    [TestCase(DType.F16)]
    [TestCase(DType.BF16)]
    public void FloatPartsAreNarrowedWindowByWindowAsOneTensor(DType storeAs)
    {
        // Parts of odd lengths, the first over two 16 MiB windows: values land at the right place across window and part edges.
        var rng = new Random(3);
        var parts = new[] { 9_000_001, 1, 0, 333_333 }.Select(n => Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() * 100 - 50).ToArray()).ToArray();
        var all = parts.SelectMany(p => p).ToArray();
        using var dir = new TempDirectory();
        var writer = new SafetensorsWriter();
        writer.Add(PendingTensor.FromFloat32("parts", [all.Length], parts.Select(p => (ReadOnlyMemory<float>)p).ToList(), storeAs));
        writer.AddFloat32("whole", [all.Length], all, storeAs);
        writer.Write(dir.File("parts.safetensors"));

        using var file = SafetensorsFile.Open(dir.File("parts.safetensors"));
        Assert.That(file.Info("parts").ByteLength, Is.EqualTo((long)all.Length * storeAs.ElementSize()));
        Assert.That(file.RawBytes("parts").SequenceEqual(file.RawBytes("whole")), Is.True, "parts and one array store the same bytes");
        var expected = storeAs switch
        {
            DType.F16 => all.Select(v => (float)(Half)v).ToArray(),
            DType.BF16 => all.Select(v => BFloat16.ToSingle(BFloat16.FromSingle(v))).ToArray(),
            _ => all,
        };
        Assert.That(file.ReadFloat32("parts").AsSpan().SequenceEqual(expected), Is.True);
    }
}
