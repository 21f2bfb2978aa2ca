using Converter.Formats.Safetensors;

namespace Converter.Formats.Tests.Safetensors;

public class DTypeTests
{
    // Pinned against the safetensors spec's dtype names and sizes.
    [TestCase(DType.F32, "F32", 4)]
    [TestCase(DType.F16, "F16", 2)]
    [TestCase(DType.BF16, "BF16", 2)]
    [TestCase(DType.I8, "I8", 1)]
    [TestCase(DType.I16, "I16", 2)]
    [TestCase(DType.I32, "I32", 4)]
    [TestCase(DType.I64, "I64", 8)]
    [TestCase(DType.U8, "U8", 1)]
    [TestCase(DType.BOOL, "BOOL", 1)]
    [TestCase(DType.F8_E4M3, "F8_E4M3", 1)]
    public void NameAndSize(DType dtype, string name, int size)
    {
        Assert.That(dtype.SafetensorsName(), Is.EqualTo(name));
        Assert.That(dtype.ElementSize(), Is.EqualTo(size));
        Assert.That(DTypes.TryParse(name, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(dtype));
    }

    [Test]
    public void TableCoversTheEnum() => Assert.That(DTypes.All, Is.EqualTo(Enum.GetValues<DType>()));

    [TestCase("F64")]
    [TestCase("bf16")]
    [TestCase("")]
    public void UnsupportedNamesDoNotParse(string name) => Assert.That(DTypes.TryParse(name, out _), Is.False);

    [Test]
    public void TensorInfoComparesShapesByValue()
    {
        var a = new TensorInfo("w", DType.F16, [2, 3], 100, 12);
        var b = new TensorInfo("w", DType.F16, [2, 3], 100, 12);
        Assert.That(a, Is.EqualTo(b));
        Assert.That(a.GetHashCode(), Is.EqualTo(b.GetHashCode()));
        Assert.That(a, Is.Not.EqualTo(b with { Shape = [3, 2] }));
        Assert.That((a.ElementCount, a.Rank, a.ToString()), Is.EqualTo((6L, 2, "w F16 (2, 3)")));
    }
}
