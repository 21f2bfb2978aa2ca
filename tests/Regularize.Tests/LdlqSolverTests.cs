using Converter.Compute;
using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

public class LdlqSolverTests
{
    private static readonly CodebookTableCache Tables = new();

    private const int K = 256, N = 128;

    /// <summary>A K×N target at the codebook's scale, the factor of a dense positive definite Hessian, and an encoder at <paramref name="bits"/>.</summary>
    private static (float[] Wr, float[] Factor, TrellisEncoder Encoder) Problem(int seed, int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(seed);
        var wr = Enumerable.Range(0, K * N).Select(_ => (float)((rng.NextDouble() * 2 - 1) * table.Rms)).ToArray();
        return (wr, BlockLdl.Decompose(RandomSpd(K, rng), K, 0.025).Factor!, new TrellisEncoder(table.Memory, bits));
    }

    [Test]
    public void HostSolverIsTheHostLoop()
    {
        const int k = K, n = N;
        var (wr, factor, encoder) = Problem(1, 2);
        foreach (var f in new[] { factor, null })
        {
            var expected = Ldlq.Quantize(wr, k, n, f, encoder);
            var actual = HostLdlqSolver.Instance.Quantize(wr, k, n, f, encoder);
            Assert.That(actual.States, Is.EqualTo(expected.States), f is null ? "without factor" : "with factor");
            Assert.That(actual.Quantized, Is.EqualTo(expected.Quantized), f is null ? "without factor" : "with factor");
        }
    }

    /// <summary>
    /// Q into an array the caller hands over (LinearQuantizer gives its spent transposed weight): the same Q and states
    /// as into a new one, whatever the array held, in that very array; an array of another size is refused.
    /// </summary>
    [Test]
    public void QuantizedIntoAGivenArrayIsTheSameAndIsThatArray()
    {
        const int k = K, n = N;
        var (wr, factor, encoder) = Problem(2, 3);
        var expected = HostLdlqSolver.Instance.Quantize(wr, k, n, factor, encoder);
        var spent = Enumerable.Range(0, k * n).Select(i => float.NaN).ToArray();

        var actual = HostLdlqSolver.Instance.Quantize(wr, k, n, factor, encoder, quantizedInto: spent);

        Assert.That(actual.Quantized, Is.SameAs(spent));
        Assert.That(actual.Quantized, Is.EqualTo(expected.Quantized));
        Assert.That(actual.States, Is.EqualTo(expected.States));
        Assert.Throws<ArgumentException>(() => HostLdlqSolver.Instance.Quantize(wr, k, n, factor, encoder, quantizedInto: new float[k * n - 1]));
    }

    /// <summary>GᵀG/k + I: symmetric positive definite with off-diagonal weight, so the factor is dense below its diagonal blocks.</summary>
    internal static double[] RandomSpd(int k, Random rng)
    {
        var g = Enumerable.Range(0, k * k).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var h = new double[k * k];
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int t = 0; t < k; t++)
                    s += g[t * k + i] * g[t * k + j];
                h[i * k + j] = s / k + (i == j ? 1 : 0);
            }
        }
        return h;
    }
}
