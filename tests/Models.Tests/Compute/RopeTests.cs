using Converter.Compute;

namespace Converter.Models.Tests.Compute;

public class RopeTests
{
    [Test]
    public void RotatesPairsOfHalvesByPositionTimesFrequency()
    {
        float[] invFreq = [1f, 0.1f];
        var table = new RotaryTable(invFreq, 3);
        // 3 tokens, 2 heads, head_dim 4: pairs (0,2) and (1,3) of each head.
        var rng = new Random(5);
        var x = MatMulTests.Random(rng, 3 * 2 * 4);
        var y = (float[])x.Clone();
        Rope.Apply(y, 3, 2, 4, table);
        for (int t = 0; t < 3; t++)
        {
            for (int h = 0; h < 2; h++)
            {
                int o = (t * 2 + h) * 4;
                for (int i = 0; i < 2; i++)
                {
                    double angle = t * invFreq[i], a = x[o + i], b = x[o + i + 2];
                    Assert.That(y[o + i], Is.EqualTo(a * Math.Cos(angle) - b * Math.Sin(angle)).Within(1e-6));
                    Assert.That(y[o + i + 2], Is.EqualTo(b * Math.Cos(angle) + a * Math.Sin(angle)).Within(1e-6));
                }
            }
        }
        Assert.That(y.AsSpan(0, 8).ToArray(), Is.EqualTo(x.AsSpan(0, 8).ToArray()), "position 0 is the identity");
    }

    [Test]
    public void RejectsMoreTokensThanTablePositions() =>
        Assert.Throws<ArgumentException>(() => Rope.Apply(new float[3 * 4], 3, 1, 4, new RotaryTable([1f, 1f], 2)));
}
