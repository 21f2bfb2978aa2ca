using Converter.Regularize.Quantization;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

public sealed class ProxyErrorTests
{
    [Test]
    public void IsTheRatioOfQuadraticFormsComputedDirectly()
    {
        const int k = 48, n = 40;
        var rng = new Random(4);
        var w = Enumerable.Range(0, k * n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var q = w.Select(v => v + (float)((rng.NextDouble() - 0.5) * 0.1)).ToArray();
        // H = AᵀA + I: symmetric positive definite, with off-diagonal terms that weight the columns' errors together.
        var a = Enumerable.Range(0, k * k).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var h = new float[k * k];
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                double s = i == j ? 1 : 0;
                for (int t = 0; t < k; t++)
                    s += a[t * k + i] * a[t * k + j];
                h[i * k + j] = (float)s;
            }
        }
        double Form(Func<int, float> x)
        {
            // Σ over output columns c of x_cᵀ H x_c, x_c the column c of the (k, n) matrix.
            double total = 0;
            for (int c = 0; c < n; c++)
            {
                for (int i = 0; i < k; i++)
                {
                    for (int j = 0; j < k; j++)
                        total += (double)x(i * n + c) * h[i * k + j] * x(j * n + c);
                }
            }
            return total;
        }
        double expected = Form(i => w[i] - q[i]) / Form(i => w[i]);
        Assert.That(ProxyError.Compute(w, q, h, k, n), Is.EqualTo(expected).Within(1e-5 * expected));
    }
}
