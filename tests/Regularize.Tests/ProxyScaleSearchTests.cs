using Converter.Regularize.Hessian;
using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

public sealed class ProxyScaleSearchTests
{
    private static readonly CodebookTableCache Tables = new();

    [Test]
    public void SamplesEvenlySpacedStripesOfAQuarterAtLeastTwo()
    {
        Assert.That(ProxyScaleSearch.SampleColumns(128), Is.EqualTo(Enumerable.Range(0, 128)));
        Assert.That(ProxyScaleSearch.SampleColumns(256), Is.EqualTo(Enumerable.Range(0, 256)));
        Assert.That(ProxyScaleSearch.SampleColumns(1024), Is.EqualTo(Enumerable.Range(0, 128).Concat(Enumerable.Range(512, 128))));
        var wide = ProxyScaleSearch.SampleColumns(32 * 128);
        Assert.That(wide, Has.Length.EqualTo(8 * 128));
        Assert.That(wide.Where((_, i) => i % 128 == 0), Is.EqualTo(Enumerable.Range(0, 8).Select(s => s * 4 * 128)));
    }

    /// <summary>W (k, n) with rows of very different sizes, its g = 1 input scales and the exact Hessian of the basis of su0/g.</summary>
    private static (float[] W, float[] Su0, HostBasisFactor Factor, TrellisEncoder Encoder, double TileMseScale) Setup(int k, int n, int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var encoder = new TrellisEncoder(table.Memory, bits);
        var w = ProxyRefinementTests.GaussianTarget(k, n, 7);
        for (int r = 0; r < k; r++)
        {
            for (int c = 0; c < n; c++)
                w[r * n + c] *= 1 + r % 5;
        }
        var su0 = LinearRegularizer.InputScales(w, k, n, Enumerable.Repeat(1f, k).ToArray(), table.Rms);
        var target = new float[k * n];
        LinearRegularizer.ApplyInputSide(w, target, k, n, su0);
        double g0 = GlobalScaleSearch.Search(new TileQuantizer(encoder), ScaleTileSampler.Sample(target, k, n)).Scale;
        var accumulator = new HessianAccumulator(k);
        var h = ProxyRefinementTests.CorrelatedHessian(k, 8);
        // The accumulator wants inputs; feed it H's Cholesky rows so that its sum is H itself.
        var l = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.DenseOfRowMajor(k, k, Array.ConvertAll(h, v => (double)v)).Cholesky().Factor;
        accumulator.Add(Enumerable.Range(0, k * k).Select(i => (float)l[i % k, i / k]).ToArray(), k);
        var hessian = GroupHessian.Finalize(accumulator, k, GroupHessian.DefaultSigma, new Random(1));
        var su = su0.Select(v => LinearRegularizer.RoundToHalf((float)(v / g0))).ToArray();
        var basis = hessian.InQuantizedBasis(su);
        var factor = new HostBasisFactor(basis, k, BlockLdl.Decompose(Array.ConvertAll(basis, v => (double)v), k, GroupHessian.DefaultSigma));
        return (w, su0, factor, encoder, g0);
    }

    [Test]
    public void PicksTheLowestProxyErrorOfTheScalesTriedIncludingTheTileMseOne()
    {
        const int k = 128, n = 256;
        var (w, su0, factor, encoder, g0) = Setup(k, n, 2);
        var result = ProxyScaleSearch.Search(w, k, n, su0, g0, factor, encoder, HostLdlqSolver.Instance, Converter.Compute.CpuDenseAlgebra.Instance);
        Assert.That(result.Evaluations.Select(e => e.Scale), Does.Contain(g0));
        Assert.That(result.Evaluations, Has.Count.GreaterThanOrEqualTo(3));
        var best = result.Evaluations.MinBy(e => e.Proxy);
        Assert.That(result.Scale, Is.EqualTo(best.Scale));
        Assert.That(best.Proxy, Is.LessThanOrEqualTo(result.Evaluations.Single(e => e.Scale == g0).Proxy));
    }

    [Test]
    public void WalksAwayFromAScaleFarTooSmall()
    {
        const int k = 128, n = 256;
        var (w, su0, factor, encoder, g0) = Setup(k, n, 2);
        double start = 0.6 * g0;
        var result = ProxyScaleSearch.Search(w, k, n, su0, start, factor, encoder, HostLdlqSolver.Instance, Converter.Compute.CpuDenseAlgebra.Instance);
        Assert.That(result.Scale, Is.GreaterThan(start * (1 + 2.5 * ProxyScaleSearch.Step)), "the walk should leave the edge of the first grid");
    }
}
