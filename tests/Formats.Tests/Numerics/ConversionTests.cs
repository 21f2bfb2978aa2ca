using Converter.Formats.Numerics;

namespace Converter.Formats.Tests.Numerics;

public class ConversionTests
{
    [Test]
    public void Bf16SpanWideningMatchesScalarForEveryLengthAndRemainder()
    {
        var rng = new Random(1);
        for (var n = 0; n <= 70; n++)
        {
            var bits = Enumerable.Range(0, n).Select(_ => (ushort)rng.Next(0x10000)).ToArray();
            var dest = new float[n];
            BFloat16.ToSingle(bits, dest);
            for (var i = 0; i < n; i++)
            {
                Assert.That(BitConverter.SingleToUInt32Bits(dest[i]), Is.EqualTo((uint)bits[i] << 16), $"n={n} i={i}");
            }
        }
    }

    // Halfway cases round to the even bf16 mantissa; just above halfway rounds up.
    [TestCase(0x3F80_8000u, (ushort)0x3F80)] // 1 + half an ulp: tie, even stays
    [TestCase(0x3F81_8000u, (ushort)0x3F82)] // tie with odd mantissa rounds up to even
    [TestCase(0x3F80_8001u, (ushort)0x3F81)] // above halfway rounds up
    [TestCase(0x3F80_7FFFu, (ushort)0x3F80)] // below halfway rounds down
    [TestCase(0x7F7F_FFFFu, (ushort)0x7F80)] // float max overflows to +Inf
    [TestCase(0xFF80_0000u, (ushort)0xFF80)] // -Inf stays -Inf
    [TestCase(0x8000_0000u, (ushort)0x8000)] // -0 keeps its sign
    public void Bf16NarrowingRoundsToNearestEven(uint floatBits, ushort expected)
    {
        Assert.That(BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(floatBits)), Is.EqualTo(expected));
    }

    [Test]
    public void Bf16NarrowingKeepsNaN()
    {
        // A NaN whose payload lives only in the low bits would truncate to Inf without the quiet bit.
        var nan = BitConverter.UInt32BitsToSingle(0x7F80_0001u);
        Assert.That(float.IsNaN(BFloat16.ToSingle(BFloat16.FromSingle(nan))), Is.True);
    }

    [Test]
    public void Bf16RoundTripIsExactForBf16Values()
    {
        for (var bits = 0; bits < 0x10000; bits++)
        {
            var f = BFloat16.ToSingle((ushort)bits);
            if (float.IsNaN(f))
                continue;
            Assert.That(BFloat16.FromSingle(f), Is.EqualTo((ushort)bits));
        }
    }

    [Test]
    public void Fp16SpansMatchTheCast()
    {
        float[] values = [0f, 1f, -2.5f, 65504f, 1e-7f, 70000f];
        var halves = new Half[values.Length];
        Float16.FromSingle(values, halves);
        var back = new float[values.Length];
        Float16.ToSingle(halves, back);
        Assert.That(back, Is.EqualTo(values.Select(v => (float)(Half)v).ToArray()));
        Assert.That(back[5], Is.EqualTo(float.PositiveInfinity));
    }

    [Test]
    public void FiniteCheckFindsTheFirstBadValueAtEveryPosition()
    {
        for (var n = 1; n <= 40; n++)
        {
            for (var bad = 0; bad < n; bad++)
            {
                foreach (var v in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                {
                    var values = Enumerable.Repeat(1.5f, n).ToArray();
                    values[bad] = v;
                    Assert.That(FiniteCheck.IndexOfNonFinite(values), Is.EqualTo(bad));
                }
            }
        }
        Assert.That(FiniteCheck.AllFinite([]), Is.True);
        Assert.That(FiniteCheck.AllFinite([float.MaxValue, -float.Epsilon]), Is.True);
    }
}
