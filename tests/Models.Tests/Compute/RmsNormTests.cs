using Converter.Compute;

namespace Converter.Models.Tests.Compute;

public class RmsNormTests
{
    [Test]
    public void MatchesDefinitionRowByRow()
    {
        float[] x = [1, 2, 3, 4, -2, 0, 0, 2];
        float[] weight = [1, 0.5f, 2, -1];
        const float eps = 1e-5f;
        var y = new float[x.Length];
        RmsNorm.Apply(x, weight, eps, y);
        for (int r = 0; r < 2; r++)
        {
            double ms = 0;
            for (int i = 0; i < 4; i++)
                ms += (double)x[r * 4 + i] * x[r * 4 + i];
            double inv = 1 / Math.Sqrt(ms / 4 + eps);
            for (int i = 0; i < 4; i++)
                Assert.That(y[r * 4 + i], Is.EqualTo(x[r * 4 + i] * inv * weight[i]).Within(1e-6));
        }
    }

    [Test]
    public void UnitWeightGivesUnitRootMeanSquareAndWorksInPlace()
    {
        var rng = new Random(3);
        var x = MatMulTests.Random(rng, 3 * 257);
        var ones = Enumerable.Repeat(1f, 257).ToArray();
        RmsNorm.Apply(x, ones, 0, x);
        for (int r = 0; r < 3; r++)
        {
            var row = x.AsSpan(r * 257, 257);
            double ms = 0;
            foreach (var v in row)
                ms += v * v;
            Assert.That(Math.Sqrt(ms / 257), Is.EqualTo(1).Within(1e-5));
        }
    }

    [Test]
    public void RejectsRaggedInput() =>
        Assert.Throws<ArgumentException>(() => RmsNorm.Apply(new float[7], new float[4], 1e-6f, new float[7]));
}
