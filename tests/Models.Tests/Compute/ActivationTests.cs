using Converter.Compute;

namespace Converter.Models.Tests.Compute;

public class ActivationTests
{
    [Test]
    public void SoftmaxIsStableForLargeLogitsAndSumsToOne()
    {
        float[] x = [1000, 999, 998, -1000];
        Softmax.InPlace(x);
        double z = 1 + Math.Exp(-1) + Math.Exp(-2);
        Assert.That(x[0], Is.EqualTo(1 / z).Within(1e-6));
        Assert.That(x[1], Is.EqualTo(Math.Exp(-1) / z).Within(1e-6));
        Assert.That(x[3], Is.EqualTo(0));
        Assert.That(x.Sum(), Is.EqualTo(1).Within(1e-6));
    }

    [Test]
    public void SwiGluIsSiluOfGateTimesUp([Values(1, 15, 1024, 3001)] int length)
    {
        var rng = new Random(length);
        var gate = MatMulTests.Random(rng, length).Select(v => v * 8).ToArray();
        var up = MatMulTests.Random(rng, length);
        var dest = new float[length];
        SwiGlu.Apply(gate, up, dest);
        for (int i = 0; i < length; i++)
        {
            double g = gate[i];
            Assert.That(dest[i], Is.EqualTo(g / (1 + Math.Exp(-g)) * up[i]).Within(1e-5), $"at {i}");
        }
    }

    /// <summary>gpt-oss's gate: (clamp(up, ±7) + 1)·g·σ(1.702·g), g = min(gate, 7), checked on values past both limits.</summary>
    [TestCase(0f, 0f, 0f)]
    [TestCase(1f, 0f, 0.845796f)]          // σ(1.702) = 0.845796
    [TestCase(-2f, 3f, -0.257366f)]        // 4·(−2·σ(−3.404)) = 4·(−2·0.032171)
    [TestCase(9f, 0f, 6.999953f)]          // gate clamped to 7: 7·σ(11.914)
    [TestCase(1f, 10f, 8 * 0.845796f)]     // up clamped to 7
    [TestCase(1f, -10f, -6 * 0.845796f)]   // up clamped to −7
    [TestCase(-50f, 1f, 0f)]               // no lower clamp on the gate: g·σ(1.702g) → 0
    public void ClampedSwiGluClampsGateAboveAndUpBothWays(float gate, float up, float expected)
    {
        Assert.That(GatedActivation.ClampedSwiGlu(gate, up), Is.EqualTo(expected).Within(2e-6));
        var dest = new float[1];
        GatedActivation.Apply(MlpActivation.ClampedSwiGlu, [gate], [up], dest);
        Assert.That(dest[0], Is.EqualTo(GatedActivation.ClampedSwiGlu(gate, up)));
    }
}
