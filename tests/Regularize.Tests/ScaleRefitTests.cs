using Converter.Regularize.Quantization;
using Converter.Regularize.Reconstruction;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

public sealed class ScaleRefitTests
{
    private static readonly CodebookTableCache Tables = new();

    /// <summary>tr((W−Ŵ)ᵀH(W−Ŵ))/tr(WᵀHW) by the definition, with Ŵ decoded by the reconstruction eval and inspect use.</summary>
    private static double BruteForceProxy(float[] w, float[] q, float[] h, int k, int n, float[] su, float[] sv)
    {
        var what = (float[])q.Clone();
        LinearReconstruction.ApplyRotationsAndScales(what, k, n, su, sv);
        double error = 0, weight = 0;
        for (int c = 0; c < n; c++)
        {
            for (int i = 0; i < k; i++)
            {
                for (int j = 0; j < k; j++)
                {
                    error += (double)(w[i * n + c] - what[i * n + c]) * h[i * k + j] * (w[j * n + c] - what[j * n + c]);
                    weight += (double)w[i * n + c] * h[i * k + j] * w[j * n + c];
                }
            }
        }
        return error / weight;
    }

    /// <summary>A weight W, its codes Q for scales su/sv (quantized plainly, no feedback), and those scales.</summary>
    private static (float[] W, float[] Q, float[] Su, float[] Sv) Quantized(int k, int n, int bits, float svBias)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(11);
        var su = Enumerable.Range(0, k).Select(i => LinearRegularizer.RoundToHalf((float)((i % 2 == 0 ? 1 : -1) * (0.5 + rng.NextDouble())))).ToArray();
        var sv = Enumerable.Range(0, n).Select(_ => LinearRegularizer.RoundToHalf((float)(0.5 + rng.NextDouble()))).ToArray();
        // W = diag(su)·Had·T·Had·diag(sv) for a Gaussian T: the regularized form of W is T exactly.
        var t = ProxyRefinementTests.GaussianTarget(k, n, 12);
        var w = (float[])t.Clone();
        LinearReconstruction.ApplyRotationsAndScales(w, k, n, su, sv);
        var states = new ushort[k * n];
        var decoded = new float[k * n];
        var tiles = new float[k * n];
        Span<float> rowMajor = stackalloc float[TileLayout.Length];
        int tilesN = n / TileLayout.Side;
        for (int tk = 0; tk < k / TileLayout.Side; tk++)
        {
            for (int tn = 0; tn < tilesN; tn++)
            {
                ScaleSearch.ScaleTileSampler.CopyTile(t, n, tk, tn, rowMajor);
                TileLayout.ToPositionOrder(rowMajor, tiles.AsSpan((tk * tilesN + tn) * TileLayout.Length, TileLayout.Length));
            }
        }
        new TrellisEncoder(table.Memory, bits).Encode(tiles, states, decoded);
        var q = new float[k * n];
        for (int tile = 0; tile < k * n / TileLayout.Length; tile++)
        {
            TileLayout.ToRowMajor(decoded.AsSpan(tile * TileLayout.Length, TileLayout.Length), rowMajor);
            int tk = tile / tilesN, tn = tile % tilesN;
            for (int r = 0; r < TileLayout.Side; r++)
                rowMajor.Slice(r * TileLayout.Side, TileLayout.Side).CopyTo(q.AsSpan((tk * TileLayout.Side + r) * n + tn * TileLayout.Side, TileLayout.Side));
        }
        // Stored output scales off by a common factor: what a badly chosen global scale would leave behind.
        return (w, q, su, sv.Select(v => LinearRegularizer.RoundToHalf(v * svBias)).ToArray());
    }

    [Test]
    public void ItsProxyErrorIsTheDefinitionAndTheRefitNeverRaisesIt()
    {
        const int k = 128, n = 128;
        var h = ProxyRefinementTests.CorrelatedHessian(k, 13);
        var (w, q, su, sv) = Quantized(k, n, 2, 1f);
        var result = ScaleRefit.Refit(w, q, h, k, n, su, sv, k, n);
        Assert.That(result.ProxyBefore, Is.EqualTo(BruteForceProxy(w, q, h, k, n, su, sv)).Within(1e-4).Percent);
        Assert.That(result.ProxyAfter, Is.EqualTo(BruteForceProxy(w, q, h, k, n, result.Suh, result.Svh)).Within(1e-4).Percent);
        Assert.That(result.ProxyAfter, Is.LessThanOrEqualTo(result.ProxyBefore));
        Assert.That(result.Suh.Concat(result.Svh).All(v => v == LinearRegularizer.RoundToHalf(v)), "scales must be what fp16 stores");
    }

    [Test]
    public void RecoversMostOfAMisscaledOutput()
    {
        const int k = 128, n = 128;
        var h = ProxyRefinementTests.CorrelatedHessian(k, 14);
        var (w, q, su, right) = Quantized(k, n, 3, 1f);
        var (_, _, _, wrong) = Quantized(k, n, 3, 1.25f);
        double best = BruteForceProxy(w, q, h, k, n, su, right);
        var result = ScaleRefit.Refit(w, q, h, k, n, su, wrong, k, n);
        Assert.That(result.ProxyBefore, Is.GreaterThan(3 * best), "the mis-scaled case should be clearly worse");
        Assert.That(result.ProxyAfter, Is.LessThanOrEqualTo(best * 1.001), $"before {result.ProxyBefore:E3}, after {result.ProxyAfter:E3}, right scales {best:E3}");
    }
}
