using System.Diagnostics;
using Converter.Cuda.Blas;
using Converter.Cuda.Quantization;
using Converter.Cuda.Trellis;
using Converter.Trellis.Codebooks;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// Where the device LDLQ's time goes at real sizes (a llama-3-8b gate_proj, a quarter of its head and the whole head): the whole
/// solver against its k/16 encoder launches alone, its feedback products alone and its transfers. Prints the split;
/// the bound is loose (the solver may not cost more than twice its parts), the numbers are for docs/gpu-notes.md.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class LdlqSpeedTests : GpuFixture
{
    [TestCase(4096, 14336, 4)]
    [TestCase(4096, 32768, 6)]
    [TestCase(4096, 128256, 6)]
    public void SolverCostsAboutItsParts(int k, int n, int bits)
    {
        var table = new CodebookTableCache().Get(CodebookSpec.Parse("mul1"));
        using var algebra = new CudaDenseAlgebra(Cuda);
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        var solver = new CudaLdlqSolver(algebra);
        var rng = new Random(3);
        var wr = Enumerable.Range(0, k * n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * 1.7 * table.Rms)).ToArray();
        var factor = StrictBlockLower(k, rng);
        // Warm-up on a small case compiles the kernels and loads cuBLAS's.
        solver.Quantize(wr.AsSpan(0, 256 * 256), 256, 256, StrictBlockLower(256, rng), encoder);

        var clock = Stopwatch.StartNew();
        var result = solver.Quantize(wr, k, n, factor, encoder);
        double total = clock.Elapsed.TotalSeconds;

        using var tiles = Cuda.Allocate<float>((long)16 * n);
        using var states = Cuda.Allocate<ushort>((long)16 * n);
        tiles.CopyFrom(wr.AsSpan(0, 16 * n));
        Cuda.Synchronize();
        clock.Restart();
        for (int block = 0; block < k / 16; block++)
            encoder.Launch(tiles, states, n / 16);
        Cuda.Synchronize();
        double encodes = clock.Elapsed.TotalSeconds;

        using var error = Cuda.Allocate<float>((long)k * n);
        using var lu = Cuda.Allocate<float>((long)k * k);
        using var product = Cuda.Allocate<float>((long)128 * n);
        clock.Restart();
        for (int spanStart = k - 128; spanStart >= 0; spanStart -= 128)
        {
            if (spanStart + 128 < k)
                solver.FeedbackProduct(error, lu, k, n, spanStart, 128, spanStart + 128, k, 0f, product.Pointer);
            for (int row0 = spanStart + 112; row0 >= spanStart; row0 -= 16)
            {
                if (row0 + 16 < spanStart + 128)
                    solver.FeedbackProduct(error, lu, k, n, row0, 16, row0 + 16, spanStart + 128, 1f, product.Pointer);
            }
        }
        Cuda.Synchronize();
        double products = clock.Elapsed.TotalSeconds;

        clock.Restart();
        error.CopyFrom(wr);
        error.CopyTo(result.Quantized);
        states.CopyTo(result.States.AsSpan(0, 16 * n));
        double transfers = clock.Elapsed.TotalSeconds;

        Console.WriteLine($"LDLQ k={k} n={n} K={bits}: solver {total:F2} s; its {k / 16} encodes {encodes:F2} s, feedback products {products:F2} s, " +
            $"one upload + download of k·n floats {transfers:F2} s; rest {total - encodes - products - transfers:F2} s");
        Assert.That(total, Is.LessThan(2 * (encodes + products + transfers) + 0.5));
    }

    /// <summary>A dense strictly block-lower factor with small entries (timing only: the products do not look at values).</summary>
    private static float[] StrictBlockLower(int k, Random rng)
    {
        var f = new float[k * k];
        for (int i = 16; i < k; i++)
        {
            for (int j = 0; j < i / 16 * 16; j++)
                f[i * k + j] = (float)((rng.NextDouble() - 0.5) * 1e-3);
        }
        return f;
    }
}
