using System.Diagnostics;
using Converter.Compute;

using Converter.Models.Tests.Compute;

namespace Converter.Models.Tests.Benchmarks;

/// <summary>GFLOP/s of <see cref="MatMul"/> on linear-layer shapes; run by hand, the number goes into MatMul's notes.</summary>
[Explicit("benchmark")]
public class MatMulBenchmark
{
    [TestCase(512, 256, 256)]
    [TestCase(512, 768, 256)]
    [TestCase(2048, 2048, 2048)]
    [TestCase(4096, 1280, 512)]
    [TestCase(512, 4096, 4096)]
    [TestCase(128, 8192, 512)]
    public void Throughput(int m, int n, int k)
    {
        var rng = new Random(1);
        var x = MatMulTests.Random(rng, m * k);
        var w = MatMulTests.Random(rng, n * k);
        var y = new float[m * n];
        // Warm up past tiered JIT compilation (tier-0 kernels are recompiled only after a delay).
        for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 1;)
            MatMul.MultiplyTransposed(x, w, y, m, n, k);
        double flops = 2.0 * m * n * k;
        // Best of as many runs as fit in 4 s: the minimum is the least disturbed by other work on the machine.
        var best = double.MaxValue;
        int reps = 0;
        for (var total = Stopwatch.StartNew(); reps < 3 || total.Elapsed.TotalSeconds < 4; reps++)
        {
            var sw = Stopwatch.StartNew();
            MatMul.MultiplyTransposed(x, w, y, m, n, k);
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        TestContext.Out.WriteLine($"MatMul m={m} n={n} k={k}: {flops / best / 1e9:F1} GFLOP/s (best of {reps}, {Environment.ProcessorCount} threads)");
    }
}
