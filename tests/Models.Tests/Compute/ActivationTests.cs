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
}
