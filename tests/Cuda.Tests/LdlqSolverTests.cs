using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Quantization;
using Converter.Cuda.Trellis;
using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The device LDLQ loop against the host loop (<see cref="Ldlq.Quantize"/>) with the same GPU encoder. The two differ
/// only in the float summation order of the feedback products, and the search rounds its targets to fp16 (§2.4), so
/// one last-bit difference can move a near-tie tile to another, equally good path, whose different error then feeds
/// every earlier tile of the same 16 columns. Hence two kinds of check: with a factor whose feedback sums have one
/// term (exact in any order) the results must be identical; with a real factor each block is checked against §3.7's
/// formula evaluated on the host from the device's own errors, where a near tie stays confined to its tile.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class LdlqSolverTests : SolverFixture
{
    private static readonly CodebookTableCache Tables = new();
    [TestCase(256)]
    [TestCase(1024)]
    public void FactorMatchesTheHostBlockLdl(int k)
    {
        var rng = new Random(k);
        var hessian = Array.ConvertAll(CorrelatedHessian(k, rng), v => (float)v);
        var expected = HostLdlqSolver.Instance.Factor(hessian, k, 0.025, CpuDenseAlgebra.Instance);
        var actual = Solver.Factor(hessian, k, 0.025, Algebra);
        Assert.That(actual.Retries, Is.EqualTo(expected.Retries));
        Assert.That(actual.Factor, Is.Not.Null);
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Factor!.Length; i++)
        {
            diff += Math.Pow(actual.Factor![i] - expected.Factor[i], 2);
            norm += Math.Pow(expected.Factor[i], 2);
            // Zero blocks (diagonal and above) must be exactly zero.
            if (expected.Factor[i] == 0 && i / k / BlockLdl.BlockSize <= i % k / BlockLdl.BlockSize)
                Assert.That(actual.Factor[i], Is.Zero, $"entry ({i / k}, {i % k})");
        }
        // Both factor in float64 (cuSOLVER vs MathNet order) and round to float.
        Assert.That(Math.Sqrt(diff / norm), Is.LessThan(1e-6));
    }

    [Test]
    public void FactorRetriesWithMoreDampingLikeTheHost()
    {
        // Indefinite: one negative eigenvalue small enough that the damping of §3.6 (2σ·mean(diag) per retry) lifts it.
        const int k = 64;
        var h = new float[k * k];
        for (int i = 0; i < k; i++)
            h[i * k + i] = i == 20 ? -0.1f : 1f;
        var expected = HostLdlqSolver.Instance.Factor(h, k, 0.025, CpuDenseAlgebra.Instance);
        var actual = Solver.Factor(h, k, 0.025, Algebra);
        Assert.That(expected.Retries, Is.GreaterThan(0));
        Assert.That(actual.Retries, Is.EqualTo(expected.Retries));
        Assert.That(actual.Factor, Is.EqualTo(expected.Factor));

        h[20 * k + 20] = -100f;
        Assert.That(Solver.Factor(h, k, 0.025, Algebra).Factor, Is.Null, "never positive definite");
    }

    [TestCase(256, 128, 2)]
    [TestCase(384, 256, 4)]
    [TestCase(512, 128, 3)]
    public void MatchesHostLoopExactlyWhenFeedbackIsExact(int k, int n, int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(k + n + bits);
        var wr = Gaussian(rng, k * n, table.Rms);
        var factor = OneTermFactor(k, rng);
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);

        var expected = Ldlq.Quantize(wr, k, n, factor, encoder);
        // Q goes into a spent array, as LinearQuantizer hands over its transposed weight: every value is overwritten.
        var spent = new float[k * n];
        Array.Fill(spent, float.NaN);
        var actual = Solver.Quantize(wr, k, n, factor, encoder, quantizedInto: spent);

        Assert.That(actual.Quantized, Is.SameAs(spent));
        AssertDecodesItsStates(actual, table, k, n, bits);
        Assert.That(FirstDifference(actual.States, expected.States, n), Is.Null, "states");
        Assert.That(FirstDifference(actual.Quantized, expected.Quantized), Is.Null, "quantized values");
    }

    [TestCase(256, 128, 2)]
    [TestCase(384, 256, 4)]
    [TestCase(384, 256, 3)]
    public void EveryBlockEncodesItsFeedbackTarget(int k, int n, int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(10 * k + n + bits);
        var factor = BlockLdl.Decompose(CorrelatedHessian(k, rng), k, 0.025).Factor!;
        var wr = Gaussian(rng, k * n, table.Rms);
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);

        var actual = Solver.Quantize(wr, k, n, factor, encoder);
        AssertDecodesItsStates(actual, table, k, n, bits);

        // Teacher-forced reference: the target of each block from §3.7's formula, in double, with the device's own
        // E = Wr − Q of the later rows, encoded by the same search. A bug in the feedback (wrong rows, a transposed
        // factor, a missed span) changes nearly every target by the size of the feedback, so nearly every tile and
        // the blocks' error against their right targets; float-order noise only flips isolated near-tie tiles.
        var error = new float[k * n];
        for (int i = 0; i < error.Length; i++)
            error[i] = wr[i] - actual.Quantized[i];
        int tilesN = n / TileLayout.Side, sameTiles = 0;
        double deviceSse = 0, referenceSse = 0;
        for (int row0 = k - TileLayout.Side; row0 >= 0; row0 -= TileLayout.Side)
        {
            var targets = BlockTiles(FeedbackTarget(wr, error, factor, k, n, row0), n);
            var states = new ushort[targets.Length];
            var decoded = new float[targets.Length];
            encoder.Encode(targets, states, decoded);
            var device = actual.States.AsSpan(row0 * n, TileLayout.Side * n);
            for (int tn = 0; tn < tilesN; tn++)
            {
                var slice = new Range(tn * TileLayout.Length, (tn + 1) * TileLayout.Length);
                if (device[slice].SequenceEqual(states.AsSpan(slice)))
                    sameTiles++;
                else if (row0 == k - TileLayout.Side)
                    Assert.Fail($"tile ({row0 / TileLayout.Side}, {tn}) of the last block, which has no feedback, differs from the host's");
            }
            for (int i = 0; i < targets.Length; i++)
            {
                deviceSse += Square(targets[i] - table[device[i]]);
                referenceSse += Square(targets[i] - decoded[i]);
            }
        }
        double same = sameTiles / (double)(k / TileLayout.Side * tilesN);
        Console.WriteLine($"k={k} n={n} K={bits}: {same:P2} of tiles as the reference, SSE device/reference {deviceSse / referenceSse:F6}");
        // Measured on an H200 (2026-11-22): 100% of tiles identical and an SSE ratio of 1.000000 for all three cases.
        // The bounds leave room for a few near-tie tiles; a feedback bug would leave only the last block (1/16 to 1/24
        // of the tiles) matching and raise the error by the feedback's share (10–35% on these Hessians).
        Assert.That(same, Is.GreaterThanOrEqualTo(0.95), "fraction of tiles identical to the teacher-forced reference");
        Assert.That(deviceSse / referenceSse, Is.LessThan(1.005), "squared error against the teacher-forced targets");
    }

    /// <summary>
    /// Threads quantizing problems of one width k at once share encoder launches (CudaLdlqSolver batches them, also of
    /// different n: q, k and v), and each gets exactly the result it gets alone: per problem the operations are the
    /// same, and the search treats every tile alone. Timed at an expert's shape (Qwen3-30B-A3B's gate and up: k 2048,
    /// n 768, K 4), where one problem's block fills a fifth of an H200.
    /// </summary>
    /// <param name="widerBy">Problem p has n + (p mod 3)·widerBy outputs.</param>
    [TestCase(256, 128, 3, 6, 0)]
    [TestCase(2048, 768, 4, 12, 0)]
    [TestCase(512, 128, 4, 6, 128)]
    public void ConcurrentProblemsShareSearchesAndKeepTheirOwnResults(int k, int n, int bits, int problems, int widerBy)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        // One factor for every problem (each has its own weights): twelve host Hessians at k = 2048 kept the second
        // case from finishing within 120 s on an H100 (sessions 19 and 21), and the batch treats each problem's factor
        // as its own whether or not they are equal.
        var factor = BlockLdl.Decompose(CorrelatedHessian(k, new Random(1000 * k - 1)), k, 0.025).Factor!;
        var inputs = Enumerable.Range(0, problems).Select(p =>
        {
            var rng = new Random(1000 * k + p);
            int width = n + p % 3 * widerBy;
            return (N: width, Wr: Gaussian(rng, k * width, table.Rms), Factor: factor);
        }).ToList();
        var solver = new CudaLdlqSolver(Algebra);
        solver.Quantize(inputs[0].Wr, k, inputs[0].N, inputs[0].Factor, encoder);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var alone = inputs.Select(x => solver.Quantize(x.Wr, k, x.N, x.Factor, encoder)).ToList();
        double aloneSeconds = clock.Elapsed.TotalSeconds;
        var before = solver.Runs;

        var together = new LdlqResult[problems];
        clock.Restart();
        Parallel.For(0, problems, new ParallelOptions { MaxDegreeOfParallelism = problems },
            p => together[p] = solver.Quantize(inputs[p].Wr, k, inputs[p].N, inputs[p].Factor, encoder));
        double togetherSeconds = clock.Elapsed.TotalSeconds;
        var runs = (Batches: solver.Runs.Batches - before.Batches, Problems: solver.Runs.Problems - before.Problems);

        Console.WriteLine($"k={k} n={n}+{widerBy}·(p mod 3) K={bits}: {problems} problems alone {aloneSeconds:F2} s, at once {togetherSeconds:F2} s " +
            $"({aloneSeconds / togetherSeconds:F2}×) in {runs.Batches} block loops");
        Assert.That(runs.Problems, Is.EqualTo(problems));
        Assert.That(runs.Batches, Is.LessThan(problems), "no two problems shared a block loop");
        for (int p = 0; p < problems; p++)
        {
            Assert.That(FirstDifference(together[p].States, alone[p].States, inputs[p].N), Is.Null, $"states of problem {p}");
            Assert.That(FirstDifference(together[p].Quantized, alone[p].Quantized), Is.Null, $"quantized values of problem {p}");
        }
    }

    /// <summary>
    /// Issue 16's column split (<see cref="ColumnSplitSolver"/>) on one GPU standing for two: each share's feedback
    /// products run at its own width, and cuBLAS may pick another kernel (another summation order) for another width.
    /// Byte identity with the unsplit loop is what lets a conversion spread over GPUs write what one GPU writes; this
    /// checks it at an 8B's down_proj-like width ratio and an uneven share.
    /// </summary>
    [TestCase(1024, 3584, 4, 1.0)]
    [TestCase(512, 1024, 3, 0.6)]
    public void ColumnSharesGiveTheUnsplitResult(int k, int n, int bits, double secondSpeed)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        var rng = new Random(k + n);
        var wr = Gaussian(rng, k * n, table.Rms);
        var factor = BlockLdl.Decompose(CorrelatedHessian(k, rng), k, 0.025).Factor!;
        var expected = Solver.Quantize(wr, k, n, factor, encoder);
        var devices = new[] { 1.0, secondSpeed }.Select(speed => new ColumnSplitDevice(Solver, _ => encoder, () => Cuda.MakeCurrent(), speed)).ToList();
        var actual = new ColumnSplitSolver(devices, home: 0).Quantize(wr, k, n, factor, encoder);
        Assert.That(FirstDifference(actual.States, expected.States, n), Is.Null);
        Assert.That(FirstDifference(actual.Quantized, expected.Quantized), Is.Null);
    }

    [Test]
    public void WithoutFactorRunsTheHostLoop()
    {
        var table = Tables.Get(CodebookSpec.Parse("mcg"));
        int k = 256, n = 128;
        var wr = Gaussian(new Random(3), k * n, table.Rms);
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, 2);
        var expected = Ldlq.Quantize(wr, k, n, null, encoder);
        var actual = Solver.Quantize(wr, k, n, (float[]?)null, encoder);
        Assert.That(FirstDifference(actual.States, expected.States, n), Is.Null);
        Assert.That(FirstDifference(actual.Quantized, expected.Quantized), Is.Null);
    }

    [Test]
    public void CpuEncoderRunsTheHostLoop()
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        int k = 256, n = 128;
        var rng = new Random(4);
        var wr = Gaussian(rng, k * n, table.Rms);
        var factor = BlockLdl.Decompose(CorrelatedHessian(k, rng), k, 0.025).Factor!;
        var encoder = new TrellisEncoder(table.Memory, 2);
        var expected = Ldlq.Quantize(wr, k, n, factor, encoder);
        var actual = Solver.Quantize(wr, k, n, factor, encoder);
        Assert.That(FirstDifference(actual.States, expected.States, n), Is.Null);
        Assert.That(FirstDifference(actual.Quantized, expected.Quantized), Is.Null);
    }

    /// <summary>Every tile a valid tail-biting sequence, and Q (row-major) the table values of the states (tile-major, position order).</summary>
    private static void AssertDecodesItsStates(LdlqResult result, CodebookTable table, int k, int n, int bits)
    {
        for (int t = 0; t < result.States.Length / TileLayout.Length; t++)
            Assert.That(TrellisPacking.IsTailBiting(result.States.AsSpan(t * TileLayout.Length, TileLayout.Length), bits), Is.True, $"tile {t} is not tail-biting");
        for (int row = 0; row < k; row++)
        {
            for (int col = 0; col < n; col++)
            {
                int tile = row / TileLayout.Side * (n / TileLayout.Side) + col / TileLayout.Side;
                int position = TileLayout.PositionOfIndex(row % TileLayout.Side * TileLayout.Side + col % TileLayout.Side);
                float expected = table[result.States[tile * TileLayout.Length + position]];
                if (result.Quantized[row * n + col] != expected)
                    Assert.Fail($"Q[{row}, {col}] = {result.Quantized[row * n + col]} is not the table value {expected} of its state");
            }
        }
    }

    /// <summary>§3.7's target of block row0: Wr + Σ_{r ≥ row0+16} L_u[r, rows]ᵀ·E[r, :], summed in double.</summary>
    private static float[] FeedbackTarget(float[] wr, float[] error, float[] factor, int k, int n, int row0)
    {
        var target = new float[TileLayout.Side * n];
        var sum = new double[n];
        for (int i = 0; i < TileLayout.Side; i++)
        {
            Array.Clear(sum);
            for (int r = row0 + TileLayout.Side; r < k; r++)
            {
                double l = factor[r * k + row0 + i];
                if (l == 0)
                    continue;
                for (int j = 0; j < n; j++)
                    sum[j] += l * error[r * n + j];
            }
            for (int j = 0; j < n; j++)
                target[i * n + j] = (float)(wr[(row0 + i) * n + j] + sum[j]);
        }
        return target;
    }

    /// <summary>A 16-row block's tiles in position order, as the search takes them.</summary>
    private static float[] BlockTiles(float[] block, int n)
    {
        var tiles = new float[block.Length];
        Span<float> rowMajor = stackalloc float[TileLayout.Length];
        for (int tn = 0; tn < n / TileLayout.Side; tn++)
        {
            ScaleTileSampler.CopyTile(block, n, 0, tn, rowMajor);
            TileLayout.ToPositionOrder(rowMajor, tiles.AsSpan(tn * TileLayout.Length, TileLayout.Length));
        }
        return tiles;
    }

    /// <summary>
    /// A strict block-lower L_u whose every column has one entry ±2^-p in a later block: each target row then gets
    /// one feedback term, a power-of-two multiple of an error, so every feedback sum is exact in any order. The row
    /// of that entry is drawn from all later rows, so both the span product and the in-span product carry feedback.
    /// </summary>
    private static float[] OneTermFactor(int k, Random rng)
    {
        var factor = new float[k * k];
        for (int i = 0; i < k - TileLayout.Side; i++)
        {
            int r = rng.Next((i / TileLayout.Side + 1) * TileLayout.Side, k);
            factor[r * k + i] = (rng.Next(2) == 0 ? 1 : -1) * MathF.ScaleB(1, -1 - rng.Next(3));
        }
        return factor;
    }

    /// <summary>XᵀX / tokens of inputs with neighbouring channels mixed and every 37th channel loud, like activations.</summary>
    private static double[] CorrelatedHessian(int k, Random rng)
    {
        int tokens = 2 * k;
        var x = new double[tokens * k];
        var mix = new double[k * 4];
        for (int i = 0; i < mix.Length; i++)
            mix[i] = rng.NextDouble() - 0.5;
        var z = new double[k];
        for (int t = 0; t < tokens; t++)
        {
            for (int i = 0; i < k; i++)
                z[i] = Normal(rng) * (i % 37 == 0 ? 8 : 1);
            for (int i = 0; i < k; i++)
            {
                double s = z[i];
                for (int d = 1; d <= 4 && i - d >= 0; d++)
                    s += mix[i * 4 + d - 1] * z[i - d];
                x[t * k + i] = s;
            }
        }
        var h = new double[k * k];
        Parallel.For(0, k, i =>
        {
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int t = 0; t < tokens; t++)
                    s += x[t * k + i] * x[t * k + j];
                h[i * k + j] = s / tokens;
            }
        });
        return h;
    }

    /// <summary>Null when equal, else where the first difference lies (tile and position for states).</summary>
    private static string? FirstDifference(ushort[] actual, ushort[] expected, int n)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (actual[i] != expected[i])
            {
                int tile = i / TileLayout.Length, tilesN = n / TileLayout.Side;
                return $"state {i} (tile {tile / tilesN}, {tile % tilesN}, position {i % TileLayout.Length}): {actual[i]:X4}, expected {expected[i]:X4}";
            }
        }
        return null;
    }

    private static string? FirstDifference(float[] actual, float[] expected)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                return $"value {i}: {actual[i]}, expected {expected[i]}";
        }
        return null;
    }

    private static float[] Gaussian(Random rng, int count, double rms) => Enumerable.Range(0, count).Select(_ => (float)(Normal(rng) * rms)).ToArray();

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static double Square(double x) => x * x;
}
