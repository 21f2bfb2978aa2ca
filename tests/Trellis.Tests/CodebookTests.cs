using Converter.Trellis.Codebooks;
using NUnit.Framework;

namespace Converter.Trellis.Tests;

public class CodebookTests
{
    // docs/exl3-format.md §1.5 test vectors: state → fp16 bits.
    [TestCase("3inst", 0x0000, 0x3A25)]
    [TestCase("3inst", 0x0001, 0xBB5B)]
    [TestCase("3inst", 0x0002, 0x3B74)]
    [TestCase("3inst", 0x0003, 0x34B6)]
    [TestCase("3inst", 0x1234, 0xC066)]
    [TestCase("3inst", 0x8000, 0xB7F8)]
    [TestCase("3inst", 0xBEEF, 0x424B)]
    [TestCase("3inst", 0xFFFF, 0xB110)]
    [TestCase("mcg", 0x0000, 0x3F60)]
    [TestCase("mcg", 0x0001, 0x304E)]
    [TestCase("mcg", 0x0002, 0xBA13)]
    [TestCase("mcg", 0x0003, 0x3AB8)]
    [TestCase("mcg", 0x1234, 0x3E0F)]
    [TestCase("mcg", 0x8000, 0xB915)]
    [TestCase("mcg", 0xBEEF, 0xC293)]
    [TestCase("mcg", 0xFFFF, 0x3ACD)]
    [TestCase("mul1", 0x0000, 0xC2E8)]
    [TestCase("mul1", 0x0001, 0x3921)]
    [TestCase("mul1", 0x0002, 0xB72D)]
    [TestCase("mul1", 0x0003, 0x3239)]
    [TestCase("mul1", 0x1234, 0xB89E)]
    [TestCase("mul1", 0x8000, 0xBAF2)]
    [TestCase("mul1", 0xBEEF, 0x3124)]
    [TestCase("mul1", 0xFFFF, 0xB936)]
    public void DecodeMatchesPublishedVectors(string codebook, int state, int expectedBits)
    {
        var spec = CodebookSpec.Parse(codebook);
        var value = CodebookDecoder.Decode(spec, (ushort)state);
        Assert.That(BitConverter.HalfToUInt16Bits(value), Is.EqualTo((ushort)expectedBits), $"{codebook} state 0x{state:X4} decoded to {value}");
    }

    [Test]
    public void ThreeInstHandCheckAtStateZero()
    {
        // §1.5: x = 0x03D45AA4 → 0x38B431C4 after mask and XOR; halves 0.18017578 + 0.58789063 = 0.76806641.
        Assert.That((float)TwoHalvesStep.Apply(0x03D45AA4), Is.EqualTo(0.76806641f).Within(1e-7f));
    }

    // §1.5 RMS / mean / min / max over all 65536 states.
    [TestCase("3inst", 1.24371092, 0.00021, -3.957031, 3.972656)]
    [TestCase("mcg", 1.24411185, -0.00004, -3.949219, 3.949219)]
    [TestCase("mcg:0xCAF6A435", 1.20644123, double.NaN, -3.966797, 3.968750)]
    [TestCase("mcg:0xFF7A83E5", 1.19905065, -0.0025, -3.972656, 3.964844)]
    [TestCase("mul1", 1.00031207, -0.0019, -3.453125, 3.347656)]
    [TestCase("mul1:0xAD9A2EC5", 1.00040006, double.NaN, -3.453125, 3.328125)]
    public void TableStatisticsMatchPublishedValues(string codebook, double rms, double mean, double min, double max)
    {
        var table = CodebookTable.Build(CodebookSpec.Parse(codebook));
        Assert.That(table.Rms, Is.EqualTo(rms).Within(5e-8));
        if (!double.IsNaN(mean))
            Assert.That(table.Mean, Is.EqualTo(mean).Within(5e-5));
        Assert.That(table.Min, Is.EqualTo(min).Within(1e-6));
        Assert.That(table.Max, Is.EqualTo(max).Within(1e-6));
    }

    [Test]
    public void TableHoldsExactFp16Values()
    {
        var table = CodebookTable.Build(CodebookSpec.Default(CodebookKind.Mul1));
        for (int s = 0; s < CodebookTable.Size; s += 97)
            Assert.That((float)(Half)table[s], Is.EqualTo(table[s]));
    }

    [Test]
    public void CacheBuildsEachTableOnce()
    {
        var cache = new CodebookTableCache();
        var a = cache.Get(CodebookSpec.Parse("mcg"));
        var b = cache.Get(CodebookSpec.Parse("mcg:0xCBAC1FED"));
        var c = cache.Get(CodebookSpec.Parse("mcg:0xCAF6A435"));
        Assert.That(b, Is.SameAs(a));
        Assert.That(c, Is.Not.SameAs(a));
    }

    [TestCase("mul1", CodebookKind.Mul1, 0x83DCD12Du)]
    [TestCase("MCG", CodebookKind.Mcg, 0xCBAC1FEDu)]
    [TestCase("3inst", CodebookKind.ThreeInst, 0x05517C72u)]
    [TestCase("mcg:0xff7a83e5", CodebookKind.Mcg, 0xFF7A83E5u)]
    [TestCase("mul1:2912562885", CodebookKind.Mul1, 0xAD9A2EC5u)]
    public void ParsesSpecs(string text, CodebookKind kind, uint multiplier)
    {
        var spec = CodebookSpec.Parse(text);
        Assert.That(spec.Kind, Is.EqualTo(kind));
        Assert.That(spec.Multiplier, Is.EqualTo(multiplier));
    }

    [TestCase("qtip", "unknown codebook")]
    [TestCase("mcg:0xCBAC1FEE", "even")]
    [TestCase("mcg:0xZZ", "malformed multiplier")]
    [TestCase("mul1:0x123456789", "malformed multiplier")]
    [TestCase("mul1:", "malformed multiplier")]
    [TestCase("3inst:0x3", "takes no multiplier")]
    public void RejectsBadSpecs(string text, string message)
    {
        var ex = Assert.Throws<FormatException>(() => CodebookSpec.Parse(text));
        Assert.That(ex!.Message, Does.Contain(message));
    }

    [Test]
    public void RegistryMarkersFollowTheFormat()
    {
        Assert.That(CodebookRegistry.Get(CodebookKind.ThreeInst).MarkerTensor, Is.Null);
        Assert.That(CodebookRegistry.Get(CodebookKind.Mcg).MarkerTensor, Is.EqualTo("mcg"));
        Assert.That(CodebookRegistry.Get(CodebookKind.Mul1).MarkerTensor, Is.EqualTo("mul1"));
        Assert.That(CodebookRegistry.All.Select(d => (int)d.Kind), Is.EqualTo(new[] { 0, 1, 2 }), "ids are the kernel's codebook ids");
    }
}
