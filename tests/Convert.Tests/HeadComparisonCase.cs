using Converter.Compute;
using Converter.Conversion.Pipeline;
using Converter.Eval.Metrics;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Modules;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// A random head with Cohere's logit scale and Gemma's final soft cap, its original weight and a perturbed one standing
/// for the reconstruction, and two streams of host states (the quantized model's and the original's), with the
/// comparison's metrics worked out by hand. Rows of 1,000 tokens make <see cref="HeadComparison"/> run two rows per
/// pass, so the seven rows take four passes, the last one short. Shared with the GPU tests (linked into Cuda.Tests).
/// </summary>
/// <param name="Head">The head, loaded with the perturbed weight (the reconstruction that replaced <paramref name="Original"/>).</param>
public sealed record HeadComparisonCase(LmHeadModule Head, Matrix Original, HiddenStates States, HiddenStates OriginalStates)
{
    public const int Hidden = 48, Vocab = 300, Tokens = 1000, RowCount = 7;
    public const float LogitScale = 0.5f, SoftCap = 6f;

    /// <summary>Token rows of the case's length (only their count and length matter to a comparison).</summary>
    public static IReadOnlyList<int[]> TokenRows => Enumerable.Range(0, RowCount).Select(_ => new int[Tokens]).ToList();

    /// <param name="algebra">Where the head's products run outside a forward pass (the GPU's algebra caches its weights for the pass).</param>
    public static HeadComparisonCase Create(int seed, IDenseAlgebra? algebra = null)
    {
        var spec = new TransformerSpec
        {
            ArchitectureName = "test",
            HiddenSize = Hidden,
            IntermediateSize = 64,
            Layers = 1,
            Heads = 2,
            KvHeads = 2,
            HeadDim = 24,
            VocabSize = Vocab,
            NormEps = 1e-6f,
            LayerAttention = [new LayerAttention(null, null)],
            LogitScale = LogitScale,
            FinalLogitSoftCap = SoftCap,
        };
        var rng = new Random(seed);
        var original = new Matrix(Vocab, Hidden, Gaussian(rng, Vocab * Hidden, 1.5f));
        var quantized = new Matrix(Vocab, Hidden, original.Data.Select(w => w + (float)(rng.NextDouble() - 0.5) * 0.2f).ToArray());
        var head = new LmHeadModule(spec, algebra);
        head.Projection.SetParameters(quantized, null);
        var states = new HiddenStates(RowCount, Tokens, Hidden);
        var originalStates = new HiddenStates(RowCount, Tokens, Hidden);
        for (int r = 0; r < RowCount; r++)
        {
            Gaussian(rng, Tokens * Hidden, 1f).CopyTo(states.Row(r));
            // The original stream has drifted a little from the quantized one.
            for (int i = 0; i < Tokens * Hidden; i++)
                originalStates.Row(r)[i] = states.Row(r)[i] + (float)(rng.NextDouble() - 0.5) * 0.1f;
        }
        return new HeadComparisonCase(head, original, states, originalStates);
    }

    /// <summary>§6.1's metrics of the given rows from logits computed here in double, one token at a time.</summary>
    public (ModuleDiff Diff, ModuleDiff AgainstOriginal) Expected(IReadOnlyList<int> rows)
    {
        var diff = new ModuleDiff();
        var againstOriginal = new ModuleDiff();
        foreach (int r in rows)
        {
            var quantized = Logits(States.Row(r).ToArray(), Head.Projection.Weight);
            diff.AddRow(quantized, Logits(States.Row(r).ToArray(), Original), Vocab);
            againstOriginal.AddRow(quantized, Logits(OriginalStates.Row(r).ToArray(), Original), Vocab);
        }
        return (diff, againstOriginal);
    }

    /// <summary>Float logits against double ones: the metrics agree to float rounding of the logits.</summary>
    public static void AssertClose(ModuleDiff actual, ModuleDiff expected)
    {
        Assert.That(actual.Rows, Is.EqualTo(expected.Rows));
        Assert.That(actual.RfnErr, Is.EqualTo(expected.RfnErr).Within(1e-5 * expected.RfnErr), "rfn_err");
        Assert.That(actual.CosErr, Is.EqualTo(expected.CosErr).Within(1e-4 * expected.CosErr), "cos_err");
        Assert.That(actual.Sqnr, Is.EqualTo(expected.Sqnr).Within(1e-4), "SQNR (dB)");
        Assert.That(actual.MaxDiffNorm, Is.EqualTo(expected.MaxDiffNorm).Within(1e-5 * expected.MaxDiffNorm), "max_diff/norm");
    }

    private static float[] Logits(float[] x, Matrix weight)
    {
        var logits = new float[Tokens * Vocab];
        for (int t = 0; t < Tokens; t++)
        {
            for (int v = 0; v < Vocab; v++)
            {
                double sum = 0;
                for (int i = 0; i < Hidden; i++)
                    sum += (double)x[t * Hidden + i] * weight.Data[v * Hidden + i];
                logits[t * Vocab + v] = (float)(Math.Tanh(sum * LogitScale / SoftCap) * SoftCap);
            }
        }
        return logits;
    }

    private static float[] Gaussian(Random rng, int count, float scale) =>
        Enumerable.Range(0, count).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())) * scale).ToArray();
}
