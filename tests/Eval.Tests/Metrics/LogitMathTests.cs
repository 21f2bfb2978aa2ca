using Converter.Eval.Metrics;

namespace Converter.Eval.Tests.Metrics;

/// <summary>Per-token log-softmax, top-K and KL on cases small enough to work out by hand.</summary>
public class LogitMathTests
{
    private static float[] Logs(params double[] p) => p.Select(v => (float)Math.Log(v)).ToArray();

    [Test]
    public void LogSumExpIsStableAndExact()
    {
        Assert.That(LogitMath.LogSumExp([0f, 0f, 0f, 0f]), Is.EqualTo(Math.Log(4)).Within(1e-15));
        // exp(1000) overflows a double; the stable form does not.
        Assert.That(LogitMath.LogSumExp([1000f, 1000f]), Is.EqualTo(1000 + Math.Log(2)).Within(1e-12));
        Assert.That(LogitMath.LogProbability(Logs(0.5, 0.25, 0.25), 1), Is.EqualTo(Math.Log(0.25)).Within(1e-7));
    }

    [Test]
    public void TopKOrdersByValueAndBreaksTiesByLowerIndex()
    {
        float[] x = [0.1f, 3f, -1f, 3f, 2f, 0.5f];
        var top = new int[4];
        LogitMath.TopK(x, top);
        Assert.That(top, Is.EqualTo(new[] { 1, 3, 4, 5 }));
        var top1 = new int[1];
        LogitMath.TopK(x, top1);
        Assert.That(top1, Is.EqualTo(new[] { 1 }));
        var all = new int[6];
        LogitMath.TopK(x, all);
        Assert.That(all, Is.EqualTo(new[] { 1, 3, 4, 5, 0, 2 }));
        Assert.That(() => LogitMath.TopK(x, new int[7]), Throws.ArgumentException);
    }

    [Test]
    public void KlOfHandComputedDistributions()
    {
        // B (reference) = (1/4, 1/2, 1/4), A = (1/2, 1/4, 1/4):
        // KL(B‖A) = 1/4·ln(1/2) + 1/2·ln 2 = ln2/4;  KL(A‖B) = 1/2·ln 2 + 1/4·ln(1/2) = ln2/4 too, so use a skewed pair as well.
        var (ab, ba, top) = LogitMath.Compare(Logs(0.5, 0.25, 0.25), Logs(0.25, 0.5, 0.25));
        Assert.That(ab, Is.EqualTo(Math.Log(2) / 4).Within(1e-7));
        Assert.That(ba, Is.EqualTo(Math.Log(2) / 4).Within(1e-7));
        Assert.That(top, Is.EqualTo(0.5).Within(1e-7));

        // B = (0.9, 0.1), A = (0.5, 0.5): KL(B‖A) = 0.9 ln 1.8 + 0.1 ln 0.2; KL(A‖B) = 0.5 ln(0.5/0.9) + 0.5 ln 5.
        (ab, ba, top) = LogitMath.Compare(Logs(0.5, 0.5), Logs(0.9, 0.1));
        Assert.That(ab, Is.EqualTo(0.9 * Math.Log(1.8) + 0.1 * Math.Log(0.2)).Within(1e-7));
        Assert.That(ba, Is.EqualTo(0.5 * Math.Log(0.5 / 0.9) + 0.5 * Math.Log(5)).Within(1e-7));
        Assert.That(top, Is.EqualTo(0.9).Within(1e-7));
    }

    [Test]
    public void KlIgnoresAConstantShiftAndIsZeroForEqualRows()
    {
        float[] a = [1f, -2f, 0.5f, 3f];
        float[] shifted = a.Select(v => v + 7f).ToArray();
        var (ab, ba, _) = LogitMath.Compare(a, shifted);
        Assert.That(ab, Is.EqualTo(0).Within(1e-6));
        Assert.That(ba, Is.EqualTo(0).Within(1e-6));
        Assert.That(LogitMath.Compare(a, a), Is.EqualTo((0.0, 0.0, LogitMath.Compare(a, a).TopProbB)));
    }
}
