using System.Diagnostics;
using Converter.Compute;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Models.Tests.Benchmarks;

/// <summary>Time per module of the sample model on a calibration-sized batch, and attention alone; run by hand.</summary>
[Explicit("benchmark")]
public class ForwardBenchmark
{
    [TestCase(16, 512)]
    public void SampleModelModuleTimes(int rows, int tokens)
    {
        var dir = RepoPaths.SampleModel;
        var model = TransformerModel.FromConfig(ModelConfig.Load(dir));
        using var checkpoint = CheckpointReader.Open(dir);
        var rng = new Random(1);
        var batch = SequenceBatch.FromTokens(Enumerable.Range(0, rows)
            .Select(_ => Enumerable.Range(0, tokens).Select(_ => rng.Next(model.Spec.VocabSize)).ToArray()).ToList());
        foreach (var module in model.Modules)
        {
            module.Load(checkpoint);
            var sw = Stopwatch.StartNew();
            batch = module.Forward(batch);
            TestContext.Out.WriteLine($"{module.Name,-20} {sw.Elapsed.TotalMilliseconds,8:F1} ms");
            module.Release();
        }
    }

    [TestCase(500, 4, 2, 64)]
    [TestCase(512, 4, 2, 64)]
    [TestCase(1024, 4, 2, 64)]
    [TestCase(2048, 4, 2, 64)]
    [TestCase(512, 8, 2, 64)]
    [TestCase(2048, 8, 2, 64)]
    public void Attention(int tokens, int heads, int kvHeads, int headDim)
    {
        var rng = new Random(2);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var q = Random(tokens * heads * headDim);
        var k = Random(tokens * kvHeads * headDim);
        var v = Random(tokens * kvHeads * headDim);
        var o = new float[q.Length];
        // Warm up past tiered JIT compilation: kernels start as unoptimized tier-0 code and are recompiled only
        // after a delay, so a short benchmark would time tier 0.
        for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 1;)
            CausalAttention.Apply(q, k, v, o, tokens, heads, kvHeads, headDim);
        double seconds = double.MaxValue;
        for (int rep = 0; rep < 10; rep++)
        {
            var sw = Stopwatch.StartNew();
            CausalAttention.Apply(q, k, v, o, tokens, heads, kvHeads, headDim);
            seconds = Math.Min(seconds, sw.Elapsed.TotalSeconds);
        }
        // Useful work: QKᵀ and PV over the causal triangle.
        double flops = 4.0 * heads * headDim * tokens * (tokens + 1) / 2;
        TestContext.Out.WriteLine($"attention T={tokens} heads={heads}/{kvHeads}×{headDim}: {seconds * 1e3:F1} ms, {flops / seconds / 1e9:F1} GFLOP/s (best of 10)");
    }
}
