using Converter.Formats.Numerics;

namespace Converter.Formats.Tests.Numerics;

/// <summary>MXFP4 blocks decoded by hand: E2M1 codes, low nibble first, one E8M0 scale per 32 values.</summary>
public class Mxfp4Tests
{
    [Test]
    public void EveryCodeDecodesToItsE2M1Value()
    {
        // E2M1: sign, exponent (bias 1), one mantissa bit; exponent 0 is subnormal (0 or 0.5).
        float[] expected = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f];
        for (int code = 0; code < 16; code++)
        {
            int sign = code >> 3, exponent = (code >> 1) & 3, mantissa = code & 1;
            float magnitude = exponent == 0 ? mantissa * 0.5f : (1 + mantissa * 0.5f) * MathF.Pow(2, exponent - 1);
            Assert.That(Mxfp4.Fp4Value(code), Is.EqualTo(expected[code]), $"code {code}");
            Assert.That(Mxfp4.Fp4Value(code), Is.EqualTo(sign == 1 ? -magnitude : magnitude), $"code {code} from its bits");
        }
        Assert.That(float.IsNegative(Mxfp4.Fp4Value(8)), "code 8 is −0");
    }

    [Test]
    public void LowNibbleComesFirstAndTheScaleIsTwoToTheExponentMinus127()
    {
        var blocks = new byte[32];
        // Block 0 (scale 2^0): byte 0 = 0x71 → values 0.5 (low 0x1), 6 (high 0x7); byte 15 = 0xA2 → 1, −1.
        blocks[0] = 0x71;
        blocks[15] = 0xA2;
        // Block 1 (scale 2^−3): byte 0 = 0xF5 → 3/8, −6/8; byte 1 = 0x8C → −2/8, −0.
        blocks[16] = 0xF5;
        blocks[17] = 0x8C;
        byte[] scales = [127, 124];
        var values = new float[64];
        Mxfp4.Decode(blocks, scales, values);

        var expected = new float[64];
        expected[0] = 0.5f;
        expected[1] = 6f;
        expected[30] = 1f;
        expected[31] = -1f;
        expected[32] = 3f / 8;
        expected[33] = -6f / 8;
        expected[34] = -2f / 8;
        expected[35] = -0f;
        Assert.That(values, Is.EqualTo(expected));
        Assert.That(float.IsNegative(values[35]), "−0 keeps its sign");
    }

    [Test]
    public void ExtremeScalesStayExactAndScale255OverflowsNonzeroValues()
    {
        var blocks = new byte[48];
        blocks[0] = 0x72;   // 1, 6
        blocks[16] = 0x72;
        blocks[32] = 0x02;  // 1, 0
        byte[] scales = [0, 254, 255];
        var values = new float[96];
        Mxfp4.Decode(blocks, scales, values);
        Assert.That(values[0], Is.EqualTo(MathF.ScaleB(1f, -127)), "2^−127 is a float32 subnormal, still exact");
        Assert.That(values[1], Is.EqualTo(MathF.ScaleB(6f, -127)));
        Assert.That(values[32], Is.EqualTo(MathF.ScaleB(1f, 127)));
        Assert.That(values[33], Is.EqualTo(float.PositiveInfinity), "6·2^127 overflows float32");
        Assert.That(values[64], Is.EqualTo(float.PositiveInfinity), "E8M0 255 (NaN) gives no finite value");
        Assert.That(values[65], Is.EqualTo(0f));
    }

    [Test]
    public void MismatchedLengthsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => Mxfp4.Decode(new byte[16], new byte[2], new float[64]));
        Assert.Throws<ArgumentException>(() => Mxfp4.Decode(new byte[16], new byte[1], new float[31]));
    }
}
