using Converter.Eval.Metrics;

namespace Converter.Eval.Tests.Metrics;

/// <summary>
/// The per-module error metrics (docs/exl3-format.md §6.1): their values on rows whose answer is known, and a row large
/// enough to be summed over threads gives the one-thread loop's result to the bit.
/// </summary>
public class ModuleDiffTests
{
    [Test]
    public void KnownRowsGiveTheirMetrics()
    {
        // a = 2b: ‖a−b‖/‖b‖ = 1, Σb²/Σ(a−b)² = 1 (0 dB), the same direction (cos_err 0).
        float[] b = [1, -2, 3, 0.5f, 4, -1];
        var diff = new ModuleDiff();
        diff.AddRow(b.Select(v => 2 * v).ToArray(), b, width: 3);
        Assert.That(diff.RfnErr, Is.EqualTo(1).Within(1e-12));
        Assert.That(diff.Sqnr, Is.EqualTo(0).Within(1e-6));
        Assert.That(diff.CosErr, Is.EqualTo(0).Within(1e-12));
        Assert.That(diff.MaxDiffNorm, Is.EqualTo(4 / Math.Sqrt(b.Sum(v => (double)v * v))).Within(1e-12));
    }

    [TestCase(3, 1000)]
    [TestCase(40, 32768)]
    public void ARowIsTheSerialLoopsToTheBit(int tokens, int width)
    {
        var rng = new Random(tokens);
        var a = new float[tokens * width];
        var b = new float[tokens * width];
        for (int i = 0; i < a.Length; i++)
        {
            b[i] = (float)(rng.NextDouble() * 8 - 4);
            a[i] = b[i] + (float)(rng.NextDouble() - 0.5) * 0.1f;
        }
        var diff = new ModuleDiff();
        diff.AddRow(a, b, width);
        diff.AddRow(b, a, width);
        var (rfn, maxDiff, sqnr, cos) = Serial([(a, b), (b, a)], width);
        Assert.That(BitConverter.DoubleToInt64Bits(diff.RfnErr), Is.EqualTo(BitConverter.DoubleToInt64Bits(rfn)));
        Assert.That(BitConverter.DoubleToInt64Bits(diff.MaxDiffNorm), Is.EqualTo(BitConverter.DoubleToInt64Bits(maxDiff)));
        Assert.That(BitConverter.DoubleToInt64Bits(diff.Sqnr), Is.EqualTo(BitConverter.DoubleToInt64Bits(sqnr)));
        Assert.That(BitConverter.DoubleToInt64Bits(diff.CosErr), Is.EqualTo(BitConverter.DoubleToInt64Bits(cos)));
    }

    /// <summary>§6.1 written out token by token on one thread, each sum in element order, as the metric was before it ran in parallel.</summary>
    private static (double Rfn, double MaxDiff, double Sqnr, double Cos) Serial(IEnumerable<(float[] A, float[] B)> rows, int width)
    {
        double rfnSum = 0, maxDiffNorm = 0, sqnrSum = 0, cosSum = 0;
        int count = 0, tokens = 0;
        foreach (var (a, b) in rows)
        {
            double diffSq = 0, refSq = 0, maxDiff = 0;
            for (int t = 0; t < a.Length / width; t++)
            {
                var pairs = Enumerable.Range(t * width, width).Select(i => (X: (double)a[i], Y: (double)b[i])).ToList();
                double dd = pairs.Sum(p => (p.X - p.Y) * (p.X - p.Y)), bb = pairs.Sum(p => p.Y * p.Y);
                double cosine = pairs.Sum(p => p.X * p.Y) / Math.Max(Math.Sqrt(pairs.Sum(p => p.X * p.X)) * Math.Sqrt(bb), 1e-8);
                maxDiff = Math.Max(maxDiff, pairs.Max(p => Math.Abs(p.X - p.Y)));
                sqnrSum += 10 * Math.Log10(bb / (dd + 1e-8));
                cosSum += 1 - cosine;
                tokens++;
                diffSq += dd;
                refSq += bb;
            }
            rfnSum += Math.Sqrt(diffSq) / Math.Sqrt(refSq);
            maxDiffNorm = Math.Max(maxDiffNorm, maxDiff / Math.Sqrt(refSq));
            count++;
        }
        return (rfnSum / count, maxDiffNorm, sqnrSum / tokens, cosSum / tokens);
    }
}
