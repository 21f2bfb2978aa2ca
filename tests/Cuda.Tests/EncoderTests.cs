using Converter.Cuda.Trellis;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Tests;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

[TestFixture, Category("Gpu")]
public sealed class EncoderTests : GpuFixture
{
    private static readonly CodebookTableCache Tables = new();

    private static IEnumerable<TestCaseData> Cases() =>
        from kind in new[] { "mul1", "mcg", "3inst" }
        from k in Enumerable.Range(1, 8)
        select new TestCaseData(kind, k).SetName($"GpuMatchesCpu({kind},{k})");

    [TestCaseSource(nameof(Cases))]
    public void GpuMatchesCpu(string codebook, int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse(codebook));
        int tiles = bits <= 2 ? 96 : 192;
        float rms = (float)table.Rms;
        var targets = Array.ConvertAll(GaussianTiles.Generate(tiles, seed: 100 + bits), v => v * rms);
        var cpuDecoded = new float[targets.Length];
        new TrellisEncoder(table.Memory, bits).Encode(targets, new ushort[targets.Length], cpuDecoded);

        using var gpu = new CudaTileEncoder(Cuda, table.Memory, bits);
        var states = new ushort[targets.Length];
        Array.Fill(states, (ushort)0xBEEF);
        var decoded = new float[targets.Length];
        gpu.Encode(targets, states, decoded);

        for (int t = 0; t < tiles; t++)
            Assert.That(TrellisPacking.IsTailBiting(states.AsSpan(t * 256, 256), bits), Is.True, $"tile {t} is not a tail-biting sequence");
        for (int i = 0; i < states.Length; i++)
            Assert.That(decoded[i], Is.EqualTo(table[states[i]]), $"decoded value {i} is not the table value of its state");
        double cpuMse = Mse(targets, cpuDecoded), gpuMse = Mse(targets, decoded);
        Console.WriteLine($"{codebook} K={bits}: CPU {cpuMse / (rms * rms):F6}, GPU {gpuMse / (rms * rms):F6}, ratio {gpuMse / cpuMse:F5}");
        Assert.That(gpuMse / cpuMse, Is.InRange(0.99, 1.005), "GPU MSE must be within 0.5% of the CPU encoder's on the same tiles");
    }

    /// <summary>
    /// The scale search's batched errors (one launch for several scales) equal one launch per scale on the GPU too:
    /// each tile's search depends on its own values only, wherever it sits in the launch.
    /// </summary>
    [Test]
    public void ScalesInOneLaunchGiveEachScalesOwnError()
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        using var gpu = new CudaTileEncoder(Cuda, table.Scaled(table.Rms), 4);
        var quantizer = new TileQuantizer(gpu);
        var tiles = GaussianTiles.Generate(300, seed: 7);
        double[] scales = [0.825, 0.9, 0.975, 1.05, 1.125];
        var together = quantizer.MeanSquaredErrors(tiles, scales);
        Assert.That(together, Is.EqualTo(scales.Select(s => quantizer.MeanSquaredError(tiles, s)).ToArray()));
    }

    [Test]
    public void ReencodingADecodedSequenceIsExact([Values(1, 2, 3, 4, 5, 6, 7, 8)] int bits)
    {
        // exllamav3's test_encode_ideal: a valid tail-biting sequence, decoded, must come back at zero error.
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(bits);
        int tiles = 64;
        var targets = new float[tiles * 256];
        for (int t = 0; t < tiles; t++)
        {
            var sequence = TrellisSequences.RandomTailBiting(bits, rng);
            for (int i = 0; i < 256; i++)
                targets[t * 256 + i] = table[sequence[i]];
        }
        using var gpu = new CudaTileEncoder(Cuda, table.Memory, bits);
        var decoded = new float[targets.Length];
        gpu.Encode(targets, new ushort[targets.Length], decoded);
        Assert.That(decoded, Is.EqualTo(targets));
    }

    private static double Mse(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double e = a[i] - b[i];
            sum += e * e;
        }
        return sum / a.Length;
    }
}
