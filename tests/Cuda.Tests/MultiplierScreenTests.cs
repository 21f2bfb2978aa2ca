using Converter.Cuda.Trellis;
using Converter.Eval.Codebooks.Screening;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The multiplier screen on the GPU (one encoder per K, its table swapped per candidate) against the CPU screen on
/// the same tiles: the same per-multiplier MSE up to the GPU search's fp16 tie-breaks, and the same ranking wherever
/// two candidates differ by more than those.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class MultiplierScreenTests : GpuFixture
{
    // GPU and CPU MSE on the same tiles agree within 0.03% (docs/benchmarks.md, "Viterbi encoder"); per candidate over
    // 128 tiles allow 0.1%, and count ranking pairs as ties when their CPU scores are closer than twice that.
    private const double MseTolerance = 1e-3;

    [TestCase("mcg")]
    [TestCase("mul1")]
    public void GpuScreenMatchesCpuScreen(string codebook)
    {
        var kind = CodebookSpec.Parse(codebook).Kind;
        var settings = new ScreenSettings(kind, [2, 3, 4], Tiles: 128, Seed: 21);
        var candidates = MultiplierList.Random(10, seed: 4).Append(CodebookRegistry.Get(kind).DefaultMultiplier).Append(0xFF7A83E5u).ToList();

        var cpu = new MultiplierScreen(settings, new CpuTableEncoders());
        using var encoders = new CudaTableEncoders(Cuda);
        var gpu = new MultiplierScreen(settings, encoders);
        var cpuResults = candidates.Select(cpu.Measure).ToList();
        var gpuResults = candidates.Select(gpu.Measure).ToList();

        for (int i = 0; i < candidates.Count; i++)
        {
            Assert.That(gpuResults[i].Device, Does.StartWith("cuda:"));
            foreach (var bits in settings.Bits)
            {
                var (c, g) = (cpuResults[i].At(bits), gpuResults[i].At(bits));
                Console.WriteLine($"{codebook} {cpuResults[i].Multiplier} K={bits}: CPU {c.Mse:F6} GPU {g.Mse:F6} ratio {g.Mse / c.Mse:F5}; paired CPU {c.Difference:E3} GPU {g.Difference:E3}");
                Assert.That(g.Mse / c.Mse, Is.EqualTo(1).Within(MseTolerance), $"{cpuResults[i].Multiplier} K={bits}");
                Assert.That(g.ReferenceMse / c.ReferenceMse, Is.EqualTo(1).Within(MseTolerance));
            }
        }
        // The locked multiplier against itself is exactly zero on the GPU too (its search is deterministic).
        var self = gpuResults[candidates.IndexOf(CodebookRegistry.Get(kind).DefaultMultiplier)];
        Assert.That(self.PerBits.Select(b => b.Difference), Is.All.EqualTo(0.0));

        foreach (int? rankBy in new int?[] { null, 2, 4 })
        {
            var cpuRank = ScreenRanking.Rank(cpuResults, rankBy);
            var gpuPlace = ScreenRanking.Rank(gpuResults, rankBy).ToDictionary(r => r.Result.Multiplier, r => r.Rank);
            for (int a = 0; a < cpuRank.Count; a++)
            {
                for (int b = a + 1; b < cpuRank.Count; b++)
                {
                    if (cpuRank[b].Score - cpuRank[a].Score <= 2 * MseTolerance)
                        continue;
                    Assert.That(gpuPlace[cpuRank[a].Result.Multiplier], Is.LessThan(gpuPlace[cpuRank[b].Result.Multiplier]),
                        $"ranked by {rankBy?.ToString() ?? "mean"}: CPU puts {cpuRank[a].Result.Multiplier} before {cpuRank[b].Result.Multiplier}");
                }
            }
        }
    }
}
