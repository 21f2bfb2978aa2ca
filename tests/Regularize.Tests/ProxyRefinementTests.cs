using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

public sealed class ProxyRefinementTests
{
    private static readonly CodebookTableCache Tables = new();

    internal static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>H = XᵀX/t + 0.025·mean(diag) for inputs whose neighbouring channels are strongly correlated, so blocks interact.</summary>
    internal static float[] CorrelatedHessian(int k, int seed)
    {
        var rng = new Random(seed);
        int tokens = 2 * k;
        var x = new double[tokens * k];
        for (int t = 0; t < tokens; t++)
        {
            double carry = 0;
            for (int i = 0; i < k; i++)
            {
                carry = 0.8 * carry + Normal(rng) * (i % 29 == 0 ? 4 : 1);
                x[t * k + i] = carry;
            }
        }
        var h = new float[k * k];
        double diag = 0;
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int t = 0; t < tokens; t++)
                    s += x[t * k + i] * x[t * k + j];
                h[i * k + j] = (float)(s / tokens);
            }
            diag += h[i * k + i];
        }
        for (int i = 0; i < k; i++)
            h[i * k + i] += (float)(0.025 * diag / k);
        return h;
    }

    internal static float[] GaussianTarget(int k, int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, k * n).Select(_ => (float)Normal(rng)).ToArray();
    }

    private static (TrellisEncoder Encoder, CodebookTable Table) Encoder(int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        return (new TrellisEncoder(table.Memory, bits), table);
    }

    private static float[] Factor(float[] h, int k) => BlockLdl.Decompose(Array.ConvertAll(h, v => (double)v), k, 0.025).Factor!;

    [Test]
    public void EveryPassLowersTheProxyErrorAndTheStatesStillDecodeToQ()
    {
        const int k = 128, n = 128, bits = 2;
        var (encoder, table) = Encoder(bits);
        var h = CorrelatedHessian(k, 1);
        var target = GaussianTarget(k, n, 2);
        var result = Ldlq.Quantize(target, k, n, Factor(h, k), encoder);
        double before = ProxyError.Compute(target, result.Quantized, h, k, n);

        var proxies = new List<double> { before };
        for (int pass = 0; pass < 2; pass++)
        {
            ProxyRefinement.Refine(target, result.Quantized, result.States, h, k, n, encoder, 1);
            proxies.Add(ProxyError.Compute(target, result.Quantized, h, k, n));
        }
        for (int i = 1; i < proxies.Count; i++)
            Assert.That(proxies[i], Is.LessThanOrEqualTo(proxies[i - 1] * (1 + 1e-9)), $"pass {i} raised the proxy error: {string.Join(", ", proxies)}");
        // Blocks interact strongly through this Hessian: re-encoding with both sides known must find something.
        Assert.That(proxies[^1], Is.LessThan(before * 0.995), string.Join(", ", proxies));

        var decoded = new float[k * n];
        TrellisDecoder.Decode(LinearQuantizer.Pack(result.States, k, n, bits), k / TileLayout.Side, n / TileLayout.Side, bits, table.Values, decoded);
        Assert.That(decoded, Is.EqualTo(result.Quantized), "refined states and refined Q disagree");
    }

    [Test]
    public void WithoutInteractionBetweenBlocksNothingChanges()
    {
        // H = I: LDLQ has no feedback, the refinement's target is T itself and the encoder's answer is already optimal.
        const int k = 128, n = 128;
        var (encoder, _) = Encoder(3);
        var h = new float[k * k];
        for (int i = 0; i < k; i++)
            h[i * k + i] = 1;
        var target = GaussianTarget(k, n, 3);
        var result = Ldlq.Quantize(target, k, n, Factor(h, k), encoder);
        var q = (float[])result.Quantized.Clone();
        var changed = ProxyRefinement.Refine(target, result.Quantized, result.States, h, k, n, encoder, 2);
        Assert.That(changed, Is.EqualTo(new[] { 0 }));
        Assert.That(result.Quantized, Is.EqualTo(q));
    }

    [Test]
    public void RejectsMismatchedShapes()
    {
        var (encoder, _) = Encoder(2);
        Assert.Throws<ArgumentException>(() => ProxyRefinement.Refine(new float[128 * 128], new float[128 * 128], new ushort[128 * 128], new float[64 * 64], 128, 128, encoder, 1));
    }
}
