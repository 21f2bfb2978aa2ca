using System.Diagnostics;
using Converter.Cuda.Trellis;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The GPU encoder must beat the CPU one by a wide margin; prints the kernel's tiles/s and resources per K (the
/// benchmark proper is `trellis bench encoder`). Loose bound: 20× the single-core CPU rate of ~500 tiles/s.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class EncoderSpeedTests : GpuFixture
{
    [Test]
    public void SearchIsFast([Values(1, 2, 3, 4, 5, 6, 7, 8)] int bits)
    {
        var table = new CodebookTableCache().Get(CodebookSpec.Parse("mul1"));
        float rms = (float)table.Rms;
        var targets = Array.ConvertAll(GaussianTiles.Generate(16384, seed: 7), v => v * rms);
        using var gpu = new CudaTileEncoder(Cuda, table.Memory, bits);
        var clock = Stopwatch.StartNew();
        double seconds = gpu.MeasureSearchSeconds(targets, repeats: 3);
        var (regs, spill) = gpu.KernelResources;
        double rate = 16384 / seconds;
        Console.WriteLine($"K={bits}: {rate:F0} tiles/s ({seconds * 1e3:F1} ms per 16384 tiles), {regs} registers, {spill} spill bytes, limit {CudaTileEncoder.ArithmeticLimit(Cuda.Device):F0}");
        Assert.That(rate, Is.GreaterThan(10_000));
    }
}
