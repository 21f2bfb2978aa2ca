using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Quantization;
using Converter.Cuda.Trellis;
using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The issue-13 quantizer experiments on the GPU backend: <see cref="ProxyRefinement"/> with the device encoder and
/// device products, <see cref="ProxyScaleSearch"/> with the device LDLQ solver, and the drift target's cross sum,
/// Cholesky and product (<see cref="DriftCorrection"/>) keep the guarantees their host tests check (Regularize.Tests).
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class QuantizerExperimentTests : SolverFixture
{
    private static readonly CodebookTableCache Tables = new();
    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>H = XᵀX/t + damping for inputs with strongly correlated neighbouring channels.</summary>
    private static float[] CorrelatedHessian(int k, Random rng)
    {
        int tokens = 2 * k;
        var x = new double[tokens * k];
        for (int t = 0; t < tokens; t++)
        {
            double carry = 0;
            for (int i = 0; i < k; i++)
                x[t * k + i] = carry = 0.8 * carry + Normal(rng);
        }
        var h = new float[k * k];
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int t = 0; t < tokens; t++)
                    s += x[t * k + i] * x[t * k + j];
                h[i * k + j] = (float)(s / tokens + (i == j ? 0.05 : 0));
            }
        }
        return h;
    }

    [TestCase(256, 256, 2)]
    [TestCase(256, 384, 4)]
    public void RefinementOnTheDeviceLowersTheProxyErrorAndKeepsStatesAndQInStep(int k, int n, int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(k + n + bits);
        var h = CorrelatedHessian(k, rng);
        var target = Enumerable.Range(0, k * n).Select(_ => (float)(Normal(rng) * table.Rms)).ToArray();
        var factor = Solver.Factor(h, k, 0.025, Algebra).Factor!;
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        var result = Solver.Quantize(target, k, n, factor, encoder);
        double before = ProxyError.Compute(target, result.Quantized, h, k, n, Algebra);

        ProxyRefinement.Refine(target, result.Quantized, result.States, h, k, n, encoder, 2, Algebra);
        double after = ProxyError.Compute(target, result.Quantized, h, k, n, Algebra);
        Console.WriteLine($"k={k} n={n} K={bits}: proxy {before:E4} -> {after:E4} ({after / before:F4}×)");
        Assert.That(after, Is.LessThan(before));
        var decoded = new float[k * n];
        TrellisDecoder.Decode(LinearQuantizer.Pack(result.States, k, n, bits), k / TileLayout.Side, n / TileLayout.Side, bits, table.Values, decoded);
        Assert.That(decoded, Is.EqualTo(result.Quantized));
    }

    [Test]
    public void ScaleRefitWithDeviceProductsMatchesTheHost()
    {
        const int k = 256, n = 256;
        var rng = new Random(5);
        var h = CorrelatedHessian(k, rng);
        var w = Enumerable.Range(0, k * n).Select(_ => (float)Normal(rng)).ToArray();
        // Q: W in the quantized basis (su = sv = 1) with noise, so the refit has something to correct.
        var q = (float[])w.Clone();
        Converter.Regularize.Hadamard.HadamardTransform.LeftMultiply(q, k, n);
        Converter.Regularize.Hadamard.HadamardTransform.RightMultiply(q, k, n);
        for (int i = 0; i < q.Length; i++)
            q[i] = 0.8f * q[i] + 0.2f * (float)Normal(rng);
        var ones = (Su: Enumerable.Repeat(1f, k).ToArray(), Sv: Enumerable.Repeat(1f, n).ToArray());
        var host = ScaleRefit.Refit(w, q, h, k, n, ones.Su, ones.Sv, k, n, CpuDenseAlgebra.Instance);
        var device = ScaleRefit.Refit(w, q, h, k, n, ones.Su, ones.Sv, k, n, Algebra);
        Console.WriteLine($"proxy {host.ProxyBefore:E4} -> host {host.ProxyAfter:E4}, device {device.ProxyAfter:E4}");
        Assert.That(host.ProxyAfter, Is.LessThan(host.ProxyBefore));
        Assert.That(device.ProxyBefore, Is.EqualTo(host.ProxyBefore).Within(1e-3).Percent);
        Assert.That(device.ProxyAfter, Is.EqualTo(host.ProxyAfter).Within(0.1).Percent);
    }

    [Test]
    public void ProxyScaleSearchWithTheDeviceSolverPicksItsLowestProxy()
    {
        const int k = 256, n = 512, bits = 3;
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(3);
        var h = CorrelatedHessian(k, rng);
        var w = Enumerable.Range(0, k * n).Select(i => (float)(Normal(rng) * (1 + i / n % 3))).ToArray();
        var su0 = LinearRegularizer.InputScales(w, k, n, Enumerable.Repeat(1f, k).ToArray(), table.Rms);
        using var factor = new HostBasisFactor(h, k, Solver.Factor(h, k, 0.025, Algebra));
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        var result = ProxyScaleSearch.Search(w, k, n, su0, 1.0, factor, encoder, Solver, Algebra);
        Assert.That(result.Evaluations.Select(e => e.Scale), Does.Contain(1.0));
        Assert.That(result.Scale, Is.EqualTo(result.Evaluations.MinBy(e => e.Proxy).Scale));
    }

    [Test]
    public void DriftTargetWithDeviceProductsMatchesTheHost()
    {
        const int k = 200, tokens = 600, outFeatures = 96;
        var rng = new Random(13);
        var quantized = Enumerable.Range(0, tokens * k).Select(_ => (float)Normal(rng)).ToArray();
        var original = quantized.Select(v => v + 0.1f * (float)Normal(rng)).ToArray();
        var weight = Enumerable.Range(0, outFeatures * k).Select(_ => (float)Normal(rng)).ToArray();
        var accumulator = new Converter.Regularize.Hessian.HessianAccumulator(k);
        accumulator.Add(quantized, tokens);
        var hessian = Converter.Regularize.Hessian.GroupHessian.Finalize(accumulator, LinearQuantizer.Pad(k), 0.025, new Random(1));
        float[] TargetOn(IDenseAlgebra algebra)
        {
            var cross = new Converter.Regularize.Hessian.DriftAccumulator(k, algebra);
            cross.Add(quantized, original, tokens);
            return DriftCorrection.For(hessian, cross, 1.0, algebra)!.Target(0, weight, outFeatures, algebra);
        }
        var host = TargetOn(CpuDenseAlgebra.Instance);
        var device = TargetOn(Algebra);
        double worst = host.Zip(device, (a, b) => Math.Abs(a - b)).Max(), shift = host.Zip(weight, (a, b) => Math.Abs(a - b)).Max();
        Console.WriteLine($"max |T_device − T_host| {worst:E2}, max |T − W| {shift:E2}");
        // The device products may run in TF32 (10-bit mantissa), so the tolerance is a percent of the step, not float rounding.
        Assert.That(worst, Is.LessThan(1e-2 * shift));
    }
}
