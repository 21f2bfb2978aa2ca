using Converter.Formats.Numerics;

namespace Converter.Formats.Tests.Numerics;

/// <summary>float8_e4m3fn decoding against values worked out by hand from the bit layout (s.eeee.mmm, bias 7).</summary>
public class Float8E4M3Tests
{
    [TestCase(0x00, 0.0)]
    [TestCase(0x38, 1.0)]                    // e = 7
    [TestCase(0x3C, 1.5)]                    // e = 7, m = 4
    [TestCase(0x40, 2.0)]
    [TestCase(0xC0, -2.0)]
    [TestCase(0x30, 0.5)]
    [TestCase(0x08, 0.015625)]               // smallest normal, 2^−6
    [TestCase(0x07, 0.013671875)]            // largest subnormal, 7/8 · 2^−6
    [TestCase(0x01, 0.001953125)]            // smallest subnormal, 2^−9
    [TestCase(0x81, -0.001953125)]
    [TestCase(0x78, 256.0)]                  // e = 15, m = 0 is finite in the fn variant
    [TestCase(0x7E, 448.0)]                  // largest finite
    [TestCase(0xFE, -448.0)]
    public void DecodesTheBitLayout(int bits, double expected) => Assert.That(Float8E4M3.ToSingle((byte)bits), Is.EqualTo((float)expected));

    [TestCase(0x7F)]
    [TestCase(0xFF)]
    public void AllOnesIsNaN(int bits) => Assert.That(float.IsNaN(Float8E4M3.ToSingle((byte)bits)), Is.True);

    [Test]
    public void NegativeZeroKeepsItsSign() => Assert.That(float.IsNegative(Float8E4M3.ToSingle(0x80)) && Float8E4M3.ToSingle(0x80) == 0f, Is.True);

    [Test]
    public void NoOtherCodeIsNaNOrInfinite()
    {
        var finite = Enumerable.Range(0, 256).Count(b => float.IsFinite(Float8E4M3.ToSingle((byte)b)));
        Assert.That(finite, Is.EqualTo(254));
    }
}
