using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Models.Forward;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The fused causal attention kernel (Kernels/attention.cu) against the batched-product path it replaces for long
/// rows and against the host's <see cref="CausalAttention"/>, on random queries, keys and values over every feature
/// the forward's attention has: grouped heads, sliding windows, score scale and soft cap, sinks, value heads of
/// another width than the keys', head widths that are not a multiple of the kernel's 16-wide chunks, rows that are
/// not a multiple of its 64-query tiles, and one-token rows.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class FusedAttentionTests : GpuFixture
{
    private CudaDenseAlgebra _algebra = null!;
    private CudaForwardBackend _products = null!;
    private CudaForwardBackend _fused = null!;

    [OneTimeSetUp]
    public void Create()
    {
        _algebra = new CudaDenseAlgebra(Cuda);
        _products = new CudaForwardBackend(_algebra, new GpuForwardOptions(GpuMath.Fp32, GpuAttention.Products));
        _fused = new CudaForwardBackend(_algebra, new GpuForwardOptions(GpuMath.Fp32, GpuAttention.Fused));
    }

    [OneTimeTearDown]
    public void Destroy()
    {
        _fused?.Dispose();
        _products?.Dispose();
        _algebra?.Dispose();
    }

    /// <summary>One attention configuration: heads/kv heads, key and value widths, window, scale, soft cap, sinks; rows × tokens.</summary>
    public sealed record Case(int Heads, int KvHeads, int HeadDim, int? ValueDim, int? Window, float? Scale, float? SoftCap, bool Sinks, int Rows, int Tokens);

    private static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(new Case(8, 2, 64, null, null, null, null, false, 2, 200)).SetName("GQA 8/2, d 64, 2 rows × 200 (not a multiple of the tile)");
        yield return new TestCaseData(new Case(4, 4, 128, null, null, null, null, false, 1, 64)).SetName("MHA d 128, 1 row × 64 (one whole tile)");
        yield return new TestCaseData(new Case(4, 1, 64, null, 37, null, null, false, 3, 150)).SetName("GQA 4/1, window 37, 3 rows × 150");
        yield return new TestCaseData(new Case(4, 2, 32, null, 16, 0.1f, 5f, false, 2, 97)).SetName("gemma-like scale 0.1, soft cap 5, window 16, 2 rows × 97");
        yield return new TestCaseData(new Case(8, 2, 64, null, 16, null, null, true, 2, 130)).SetName("gpt-oss-like sinks, window 16, 2 rows × 130");
        yield return new TestCaseData(new Case(8, 2, 64, null, null, null, null, true, 1, 70)).SetName("sinks without a window, 1 row × 70");
        yield return new TestCaseData(new Case(4, 4, 40, 24, null, 0.2f, null, false, 2, 90)).SetName("latent-like d 40, values 24 (neither a multiple of 16), 2 rows × 90");
        yield return new TestCaseData(new Case(2, 2, 192, 128, null, null, null, false, 1, 70)).SetName("deepseek-like d 192, values 128, 1 row × 70");
        yield return new TestCaseData(new Case(2, 1, 256, null, null, null, null, false, 1, 65)).SetName("gemma-3-like d 256 (widest values), 1 row × 65");
        yield return new TestCaseData(new Case(4, 2, 64, null, null, null, null, true, 5, 1)).SetName("one-token rows with sinks, 5 rows × 1");
        yield return new TestCaseData(new Case(4, 2, 64, null, 3, null, 2f, false, 3, 2)).SetName("two-token rows, window 3, soft cap, 3 rows × 2");
        yield return new TestCaseData(new Case(8, 1, 128, null, 300, null, null, false, 1, 600)).SetName("long row 600, window 300 (whole key tiles skipped), GQA 8/1");
    }

    [TestCaseSource(nameof(Cases))]
    public void FusedAttentionEqualsTheBatchedProducts(Case c)
    {
        var rng = new Random(c.Heads * 1000 + c.Tokens * 7 + c.HeadDim);
        int dv = c.ValueDim ?? c.HeadDim;
        int queryWidth = c.Heads * c.HeadDim, keyWidth = c.KvHeads * c.HeadDim, valueWidth = c.KvHeads * dv, outputWidth = c.Heads * dv;
        int n = c.Rows * c.Tokens;
        // q, k and v side by side in one input; the pass splits them with Columns (one "head" of the whole width).
        var input = new Matrix(n, queryWidth + keyWidth + valueWidth, Normal(rng, n * (queryWidth + keyWidth + valueWidth), 1f));
        float[] sinks = c.Sinks ? Normal(rng, c.Heads, 2f) : [];
        var shape = new AttentionShape(c.Heads, c.KvHeads, c.HeadDim, c.Window, c.Scale, c.SoftCap, c.ValueDim) { Sinks = sinks };
        Activations Body(IForwardPass pass, Activations x) => pass.Attend(pass.Columns(x, 1, 0, queryWidth), pass.Columns(x, 1, queryWidth, keyWidth),
            pass.Columns(x, 1, queryWidth + keyWidth, valueWidth), c.Tokens, shape);

        var products = _products.Run(input, Body);
        var fused = _fused.Run(input, Body);

        var host = new float[n * outputWidth];
        for (int r = 0; r < c.Rows; r++)
        {
            var q = new float[c.Tokens * queryWidth];
            var k = new float[c.Tokens * keyWidth];
            var v = new float[c.Tokens * valueWidth];
            for (int t = 0; t < c.Tokens; t++)
            {
                var row = input.Row(r * c.Tokens + t);
                row[..queryWidth].CopyTo(q.AsSpan(t * queryWidth));
                row.Slice(queryWidth, keyWidth).CopyTo(k.AsSpan(t * keyWidth));
                row.Slice(queryWidth + keyWidth, valueWidth).CopyTo(v.AsSpan(t * valueWidth));
            }
            CausalAttention.Apply(q, k, v, host.AsSpan(r * c.Tokens * outputWidth, c.Tokens * outputWidth), c.Tokens, c.Heads, c.KvHeads, c.HeadDim,
                c.Window, c.Scale, c.SoftCap, sinks, c.ValueDim);
        }

        Assert.That(fused.Data, Has.All.Matches<float>(float.IsFinite));
        Assert.That(Deviation.Relative<float>(products.Data, host), Is.LessThan(1e-4), "the products path against the host (the reference itself)");
        Assert.That(Deviation.Relative<float>(fused.Data, products.Data), Is.LessThan(1e-4), "fused against products");
        // Token by token as well, so that one wrong tile edge or row cannot hide in the whole's norm.
        for (int t = 0; t < n; t++)
        {
            var expected = host.AsSpan(t * outputWidth, outputWidth);
            Assert.That(Deviation.Relative<float>(fused.Row(t), expected), Is.LessThan(1e-4), $"token {t % c.Tokens} of row {t / c.Tokens}");
        }
    }

    /// <summary>
    /// Rows at the auto threshold take the fused kernel (the products' score matrix would be rows·heads·tokens² floats):
    /// auto's output equals the fused backend's bit for bit there and the products backend's one token shorter.
    /// </summary>
    [Test]
    public void AutoTakesTheFusedKernelFromTheThresholdOn()
    {
        using var auto = new CudaForwardBackend(_algebra);
        Assert.That(auto.Options.Attention, Is.EqualTo(GpuAttention.Auto));
        var rng = new Random(5);
        foreach (int tokens in new[] { CudaForwardBackend.FusedAttentionTokens, CudaForwardBackend.FusedAttentionTokens - 1 })
        {
            var shape = new AttentionShape(2, 1, 64, null, null, null);
            var input = new Matrix(tokens, 4 * 64, Normal(rng, tokens * 4 * 64, 1f));
            Activations Body(IForwardPass pass, Activations x) =>
                pass.Attend(pass.Columns(x, 1, 0, 128), pass.Columns(x, 1, 128, 64), pass.Columns(x, 1, 192, 64), tokens, shape);
            var expected = (tokens >= CudaForwardBackend.FusedAttentionTokens ? _fused : _products).Run(input, Body);
            Assert.That(auto.Run(input, Body).Data, Is.EqualTo(expected.Data), $"{tokens} tokens");
        }
    }

    private static float[] Normal(Random rng, int count, float scale)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++)
            v[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())) * scale;
        return v;
    }
}
