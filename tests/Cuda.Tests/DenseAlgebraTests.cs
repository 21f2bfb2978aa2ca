using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Regularize.Quantization;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>cuBLAS/cuSOLVER against the CPU implementation on fresh random operands (relative error of FP32 GEMM: ~1e-6).</summary>
[TestFixture, Category("Gpu")]
public sealed class DenseAlgebraTests : GpuFixture
{
    private CudaDenseAlgebra _gpu = null!;
    private readonly CpuDenseAlgebra _cpu = CpuDenseAlgebra.Instance;

    [OneTimeSetUp]
    public void CreateAlgebra() => _gpu = new CudaDenseAlgebra(Cuda);

    [OneTimeTearDown]
    public void DisposeAlgebra() => _gpu?.Dispose();

    [Test]
    public void LinearMatchesCpu()
    {
        var rng = new Random(1);
        int m = 300, n = 520, k = 260;
        var x = Random(rng, m * k);
        var w = Random(rng, n * k);
        var bias = Random(rng, n);
        var expected = new float[m * n];
        var actual = Enumerable.Repeat(float.NaN, m * n).ToArray();
        _cpu.Linear(x, w, bias, expected, m, n, k);
        _gpu.Linear(x, w, bias, actual, m, n, k);
        Assert.That(Deviation.Relative<float>(actual, expected), Is.LessThan(1e-5));
        // Same weight array again: served from the device cache, still right for new inputs.
        x = Random(rng, m * k);
        _cpu.Linear(x, w, bias, expected, m, n, k);
        _gpu.Linear(x, w, bias, actual, m, n, k);
        Assert.That(Deviation.Relative<float>(actual, expected), Is.LessThan(1e-5));
    }

    /// <summary>
    /// Past a lean plan's byte cap the newest weight that makes room goes (<see cref="WeightCachePolicy"/>): a pass
    /// over four weights where three fit keeps the two oldest, which the next pass then finds without uploading.
    /// </summary>
    [Test]
    public void PastALeanCapTheNewestThatMakesRoomGoes()
    {
        using var algebra = new CudaDenseAlgebra(Cuda);
        algebra.RunLean(3 * 4 * 1000);
        var rng = new Random(11);
        var weights = Enumerable.Range(0, 4).Select(_ => Random(rng, 1000)).ToList();
        foreach (var w in weights)
            algebra.CachedWeight(w);
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(3));
        Assert.That(algebra.Held().WeightBytes, Is.EqualTo(3 * 4 * 1000));
        double uploaded = algebra.WeightUploadSeconds;
        algebra.CachedWeight(weights[0]);
        algebra.CachedWeight(weights[1]);
        Assert.That(algebra.WeightUploadSeconds, Is.EqualTo(uploaded), "the two oldest stayed");
        algebra.CachedWeight(weights[2]);
        Assert.That(algebra.WeightUploadSeconds, Is.GreaterThan(uploaded), "the third was the one that went");
        GC.KeepAlive(weights);
    }

    /// <summary>
    /// The cache's entry count (<see cref="CudaDenseAlgebra.CachedWeights"/>): raised, it keeps a block's originals and
    /// reconstructions both (14 weights); lowered, it drops the oldest at once.
    /// </summary>
    [Test]
    public void TheWeightCacheHoldsAsManyAsAsked()
    {
        using var algebra = new CudaDenseAlgebra(Cuda);
        var rng = new Random(10);
        var weights = Enumerable.Range(0, 14).Select(_ => Random(rng, 64 * 64)).ToList();
        weights.ForEach(algebra.Preload);
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(CudaDenseAlgebra.DefaultCachedWeights));
        algebra.CachedWeights = 14;
        weights.ForEach(algebra.Preload);
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(14));
        algebra.CachedWeights = CudaDenseAlgebra.DefaultCachedWeights;
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(CudaDenseAlgebra.DefaultCachedWeights));
        GC.KeepAlive(weights);
    }

    /// <summary>
    /// Weights preloaded on the upload stream (large enough that the copy takes a while, and while the default stream
    /// is busy with products) multiply exactly as weights uploaded at their first use; preloading one already cached
    /// adds nothing, and more preloads than the cache holds push the oldest out.
    /// </summary>
    [Test]
    public void PreloadedWeightsMultiplyAsUploadedOnes()
    {
        using var algebra = new CudaDenseAlgebra(Cuda);
        var rng = new Random(9);
        int m = 512, n = 4096, k = 4096;
        var x = Random(rng, m * k);
        var weights = Enumerable.Range(0, 3).Select(_ => Random(rng, n * k)).ToList();
        var expected = weights.Select(w =>
        {
            var y = new float[m * n];
            _gpu.Linear(x, w, null, y, m, n, k);
            return y;
        }).ToList();
        var busy = Random(rng, n * k);
        var scratch = new float[m * n];
        algebra.Linear(x, busy, null, scratch, m, n, k);
        foreach (var w in weights)
        {
            algebra.Preload(w);
            algebra.Linear(x, busy, null, scratch, m, n, k);
        }
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(4));
        algebra.Preload(weights[0]);
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(4), "already cached");
        for (int i = 0; i < weights.Count; i++)
        {
            var actual = Enumerable.Repeat(float.NaN, m * n).ToArray();
            algebra.Linear(x, weights[i], null, actual, m, n, k);
            Assert.That(actual, Is.EqualTo(expected[i]), $"weight {i}");
        }
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(4), "every preloaded weight was found in the cache");
        var extra = Enumerable.Range(0, 8).Select(_ => Random(rng, 64 * 64)).ToList();
        extra.ForEach(algebra.Preload);
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(8));
        GC.KeepAlive(extra);
    }

    /// <summary>
    /// The weight cache holds its host arrays weakly: weights nothing else references are dropped from it (with their
    /// device copies) at the next lookup, instead of staying alive until eight newer ones push them out.
    /// </summary>
    [Test]
    public void CollectedWeightsLeaveTheCache()
    {
        using var algebra = new CudaDenseAlgebra(Cuda);
        var rng = new Random(5);
        int m = 8, n = 64, k = 32;
        var x = Random(rng, m * k);
        var y = new float[m * n];
        var kept = Random(rng, n * k);
        algebra.Linear(x, kept, null, y, m, n, k);
        UseAndDropTwoWeights(algebra, x, y, m, n, k);
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(3));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        algebra.Linear(x, kept, null, y, m, n, k);
        Assert.That(algebra.CachedWeightCount, Is.EqualTo(1));
        GC.KeepAlive(kept);
    }

    // Not inlined, so that no local of this frame still references the two weights when the caller collects.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void UseAndDropTwoWeights(CudaDenseAlgebra algebra, float[] x, float[] y, int m, int n, int k)
    {
        var rng = new Random(6);
        for (int i = 0; i < 2; i++)
            algebra.Linear(x, Random(rng, n * k), null, y, m, n, k);
    }

    [Test]
    public void MultiplyAddMatchesCpu()
    {
        var rng = new Random(2);
        int p = 128, m = 384, n = 640, lda = 1024;
        var a = Random(rng, (p - 1) * lda + m);
        var b = Random(rng, m * n);
        var c0 = Random(rng, p * n);
        var expected = (float[])c0.Clone();
        var actual = (float[])c0.Clone();
        _cpu.MultiplyAdd(a, lda, b, expected, p, m, n);
        _gpu.MultiplyAdd(a, lda, b, actual, p, m, n);
        Assert.That(Deviation.Relative<float>(actual, expected), Is.LessThan(1e-5));
    }

    /// <summary>Whole (650 columns) and in column stripes, one that divides n and one that leaves a narrow last stripe (a 70B head goes in 8192-column ones).</summary>
    [TestCase(650)]
    [TestCase(130)]
    [TestCase(97)]
    public void ProxyTracesMatchCpu(int stripe)
    {
        var rng = new Random(9);
        int k = 384, n = 650;
        // H symmetric positive definite like a damped Hessian (the ratio does not depend on its scale). Q = W + 1%
        // noise: E is small, as after LDLQ.
        var h = Array.ConvertAll(RandomSpd(rng, k), v => (float)v);
        var w = Random(rng, k * n);
        var q = w.Select(v => v + 0.01f * (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var (cpuError, cpuWeight) = _cpu.ProxyTraces(h, w, q, k, n);
        var (gpuError, gpuWeight) = _gpu.ProxyTraces(h, w, q, k, n, stripe);
        Assert.That(gpuWeight, Is.EqualTo(cpuWeight).Within(1e-5 * cpuWeight));
        Assert.That(gpuError, Is.EqualTo(cpuError).Within(1e-5 * cpuError));
        Assert.That(cpuError / cpuWeight, Is.InRange(1e-6, 1e-3), "the operands make a small, nonzero proxy error");
    }

    [Test]
    public void GramSumMatchesCpu()
    {
        var rng = new Random(3);
        int k = 200;
        using var cpu = _cpu.CreateGramAccumulator(k);
        using var gpu = _gpu.CreateGramAccumulator(k);
        var (expected, actual) = SumBoth(rng, k, cpu, gpu, 333, 64, 1000);
        Assert.That(Deviation.Relative<double>(actual, expected), Is.LessThan(1e-5));
        AssertSymmetricAndFilled(actual, k);
    }

    /// <summary>
    /// A product in column stripes (a 70B down_proj's 28672² goes through 2304-wide ones) sums what the whole product
    /// does, to float rounding, over stripes that divide k and one that does not; and the mean read on the device is
    /// the host's mean of the same sum to the bit.
    /// </summary>
    [TestCase(64)]
    [TestCase(200)]
    [TestCase(77)]
    public void GramSumInStripesMatchesCpuAndItsMeanMatchesTheHostsToTheBit(int stripe)
    {
        var rng = new Random(5);
        int k = 200, padded = 256;
        using var cpu = _cpu.CreateGramAccumulator(k);
        using var gpu = _gpu.CreateGramAccumulator(k, stripe);
        var (expected, actual) = SumBoth(rng, k, cpu, gpu, 333, 64);
        Assert.That(Deviation.Relative<double>(actual, expected), Is.LessThan(1e-5));
        AssertSymmetricAndFilled(actual, k);
        const double count = 397;
        var host = GramMeans.Of(actual, k, count, padded);
        var device = gpu.Mean(count, padded);
        Assert.That(device.Values, Is.EqualTo(host.Values), "the mean, rounded to float on the device and on the host");
        Assert.That(device.Diagonal, Is.EqualTo(host.Diagonal));
        Assert.That(device.Values.AsSpan(k * padded).ToArray(), Has.All.EqualTo(0f), "padding rows");
    }

    /// <summary>
    /// With <c>--hessian-math tf32</c> each stripe is one GEMM whose whole square (both triangles of its diagonal block)
    /// is computed: only the lower triangle is added, so the sum is the host's within TF32's rounding of the operands
    /// (2⁻¹¹ relative each) at any stripe width, exactly symmetric, and every entry summed into.
    /// </summary>
    [TestCase(64)]
    [TestCase(200)]
    [TestCase(77)]
    public void Tf32GramSumInStripesStaysWithinTf32RoundingOfTheHost(int stripe)
    {
        var rng = new Random(7);
        int k = 200;
        using var tf32 = new CudaDenseAlgebra(Cuda, GpuMath.Tf32);
        using var cpu = _cpu.CreateGramAccumulator(k);
        using var gpu = tf32.CreateGramAccumulator(k, stripe);
        var (expected, actual) = SumBoth(rng, k, cpu, gpu, 333, 64, 1000);
        double deviation = Deviation.Relative<double>(actual, expected);
        TestContext.Out.WriteLine($"stripe {stripe}: relative deviation from the host's FP32 sum {deviation:E2}");
        Assert.That(deviation, Is.LessThan(2e-3));
        AssertSymmetricAndFilled(actual, k);
        Assert.That(tf32.GramMath, Is.EqualTo(GpuMath.Tf32));
    }

    /// <summary>The same random row blocks added to both accumulators; their sums.</summary>
    private static (double[] Cpu, double[] Gpu) SumBoth(Random rng, int k, IGramAccumulator cpu, IGramAccumulator gpu, params int[] blocks)
    {
        foreach (int rows in blocks)
        {
            var x = Random(rng, rows * k);
            cpu.Add(x, rows);
            gpu.Add(x, rows);
        }
        return (cpu.Sum(), gpu.Sum());
    }

    /// <summary>One triangle is summed and mirrored: exactly symmetric, and every entry summed into (none left at 0).</summary>
    private static void AssertSymmetricAndFilled(double[] sum, int k)
    {
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < i; j++)
                Assert.That(sum[i * k + j], Is.EqualTo(sum[j * k + i]), $"({i}, {j})");
        }
        Assert.That(sum.Count(v => v == 0), Is.Zero, "every entry was summed into once");
    }

    [Test]
    public void CholeskyMatchesCpuAndRejectsIndefinite()
    {
        var rng = new Random(4);
        int n = 96;
        var spd = RandomSpd(rng, n);
        var expected = (double[])spd.Clone();
        var actual = (double[])spd.Clone();
        Assert.That(_cpu.TryCholesky(expected, n), Is.True);
        Assert.That(_gpu.TryCholesky(actual, n), Is.True);
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-9 * Math.Max(1, Math.Abs(expected[i]))));
        var indefinite = (double[])spd.Clone();
        indefinite[5 * n + 5] = -1;
        Assert.That(_gpu.TryCholesky(indefinite, n), Is.False);
    }

    /// <summary>
    /// The drift target's cross sum Σ AᵀB on the device, square and projected (B narrower than A, as a down_proj's
    /// (X − X̃)·Wᵀ), in stripes of the sum's rows that do and do not divide k, against the float64 sum of the
    /// definition: every entry, not a triangle (the product is not symmetric).
    /// </summary>
    [TestCase(64, 200)]
    [TestCase(200, 200)]
    [TestCase(64, 90)]
    [TestCase(200, 90)]
    public void CrossSumInStripesMatchesTheDefinition(int stripe, int columns)
    {
        var rng = new Random(8);
        int k = 200;
        using var gpu = _gpu.CreateCrossAccumulator(k, columns, stripe);
        Assert.That((gpu.Rows, gpu.Columns), Is.EqualTo((k, columns)));
        var expected = new double[k * columns];
        foreach (int rows in new[] { 333, 64 })
        {
            var a = Random(rng, rows * k);
            var b = Random(rng, rows * columns);
            gpu.Add(a, b, rows);
            for (int t = 0; t < rows; t++)
            {
                for (int i = 0; i < k; i++)
                {
                    for (int j = 0; j < columns; j++)
                        expected[i * columns + j] += (double)a[t * k + i] * b[t * columns + j];
                }
            }
        }
        Assert.That(Deviation.Relative<double>(gpu.Sum(), expected), Is.LessThan(1e-5));
    }

    /// <summary>The product stripes of a projected sum: whole where k × columns fits the Gram sums' product cap, else multiples of 128 rows; a 70B down_proj's 28672 × 8192.</summary>
    [Test]
    public void ProjectedCrossStripesKeepTheProductUnderTheCap()
    {
        Assert.That(CudaDenseAlgebra.CrossStripeRows(200, 90), Is.EqualTo(200));
        int rows = CudaDenseAlgebra.CrossStripeRows(28672, 8192);
        Assert.That(rows % 128, Is.Zero);
        Assert.That((long)rows * 8192, Is.LessThanOrEqualTo(1L << 26));
        Assert.That(CudaDenseAlgebra.CrossBytes(28672, 8192), Is.EqualTo(8L * 28672 * 8192 + 4L * 8192 * rows));
        Assert.That(CudaDenseAlgebra.CrossBytes(14336, 14336), Is.EqualTo(CudaDenseAlgebra.GramBytes(14336)), "a square sum is laid out as a Gram sum");
    }

    /// <summary>A⁻¹·B on the device (Dpotrf, two Dtrsm) against the host's Cholesky substitutions; false for an indefinite A.</summary>
    [Test]
    public void PositiveDefiniteSolveMatchesTheHost()
    {
        var rng = new Random(9);
        int n = 150, columns = 70;
        var spd = RandomSpd(rng, n);
        var b = Random(rng, n * columns).Select(v => (double)v).ToArray();
        var expected = (double[])b.Clone();
        var actual = (double[])b.Clone();
        Assert.That(((IDenseAlgebra)_cpu).TrySolvePositiveDefinite((double[])spd.Clone(), expected, n, columns), Is.True);
        Assert.That(_gpu.TrySolvePositiveDefinite((double[])spd.Clone(), actual, n, columns), Is.True);
        Assert.That(Deviation.Relative<double>(actual, expected), Is.LessThan(1e-10));
        var indefinite = (double[])spd.Clone();
        indefinite[5 * n + 5] = -1;
        Assert.That(_gpu.TrySolvePositiveDefinite(indefinite, (double[])b.Clone(), n, columns), Is.False);
    }

    /// <summary>
    /// The drift target's G = scale·A⁻¹·C against the host's (<see cref="IDenseAlgebra.TrySolveCross"/>'s default): A the
    /// top-left k×k of a padded Hessian read where it lies on the device (a Gram mean left in place) or uploaded from
    /// the host, C a device cross sum (solved in its own memory, which spends it) or a host one.
    /// </summary>
    [TestCase(true, 150)]
    [TestCase(false, 150)]
    [TestCase(true, 37)]
    [TestCase(false, 37)]
    public void CrossSolveMatchesTheHost(bool onDevice, int columns)
    {
        var rng = new Random(10);
        int k = 150, padded = 256, rows = 400;
        var x = Random(rng, rows * k);
        var y = Random(rng, rows * columns);
        using var gram = _gpu.CreateGramAccumulator(k);
        gram.Add(x, rows);
        var mean = gram.MeanInPlace(rows, padded)!;
        using var resident = mean.Values;
        resident.AddToDiagonal(0.05f);
        var hostH = resident.ToHost();
        using var hostCross = ((IDenseAlgebra)_cpu).CreateCrossAccumulator(k, columns);
        hostCross.Add(x, y, rows);
        var expected = ((IDenseAlgebra)_cpu).TrySolveCross(hostCross, null, () => hostH, k, padded, 0.75 / rows)!;
        Assert.That(expected, Has.Length.EqualTo(k * columns));

        using var deviceCross = _gpu.CreateCrossAccumulator(k, columns);
        deviceCross.Add(x, y, rows);
        float[]? actual = onDevice
            ? _gpu.TrySolveCross(deviceCross, resident, () => throw new AssertionException("the resident Hessian must be read on the device"), k, padded, 0.75 / rows)
            : _gpu.TrySolveCross(hostCross, null, () => hostH, k, padded, 0.75 / rows);
        Assert.That(actual, Is.Not.Null);
        Assert.That(Deviation.Relative<float>(actual!, expected), Is.LessThan(1e-6));
        if (onDevice)
            Assert.That(() => deviceCross.Sum(), Throws.InstanceOf<ObjectDisposedException>(), "the solve spends the device sum");

        var indefinite = (float[])hostH.Clone();
        indefinite[3 * padded + 3] = -1;
        Assert.That(_gpu.TrySolveCross(hostCross, null, () => indefinite, k, padded, 1), Is.Null);
    }

    /// <summary>
    /// G kept on the device (<see cref="CudaDenseAlgebra.TrySolveCrossKept"/>) is the G that comes down, and the drift
    /// target's product W·Gᵀ read there is the host's; a lean run keeps G on the host (its plan does not count a k²
    /// float beside the group's linears), and the same product takes it from there.
    /// </summary>
    [Test]
    public void AKeptCrossSolveMultipliesWhereItIsAsTheHostDoes()
    {
        var rng = new Random(12);
        int k = 150, padded = 256, rows = 400, outputs = 37;
        var x = Random(rng, rows * k);
        var y = Random(rng, rows * k);
        var hostH = DampedHessian(x, k, padded, rows);
        float[] SolveOnHost()
        {
            using var cross = ((IDenseAlgebra)_cpu).CreateCrossAccumulator(k);
            cross.Add(x, y, rows);
            return ((IDenseAlgebra)_cpu).TrySolveCross(cross, null, () => hostH, k, padded, 0.75 / rows)!;
        }
        var expectedG = SolveOnHost();
        var w = Random(rng, outputs * k);
        var expected = new float[outputs * k];
        _cpu.MultiplyTransposed(w, expectedG, expected, outputs, k, k);

        foreach (bool lean in new[] { false, true })
        {
            using var algebra = new CudaDenseAlgebra(Cuda);
            if (lean)
                algebra.RunLean(1L << 30);
            using var cross = algebra.CreateCrossAccumulator(k);
            cross.Add(x, y, rows);
            using var kept = algebra.TrySolveCrossKept(cross, null, () => hostH, k, padded, 0.75 / rows)!;
            Assert.That(kept, lean ? Is.TypeOf<HostResidentMatrix>() : Is.TypeOf<CudaResidentMatrix>());
            Assert.That(Deviation.Relative<float>(kept.ToHost(), expectedG), Is.LessThan(1e-6), $"G, lean {lean}");
            var actual = new float[outputs * k];
            algebra.MultiplyTransposed(w, kept, actual, outputs, k);
            Assert.That(Deviation.Relative<float>(actual, expected), Is.LessThan(1e-5), $"W·Gᵀ, lean {lean}");
            // In blocks of rows through own buffers (a head's product), G kept on the device or (lean) on the host: 37
            // rows as 10 + 10 + 10 + 7, every row where it belongs, and none of it left in the scratch.
            long scratchBefore = algebra.Held().ScratchBytes, allocatedBefore = Cuda.AllocatedBytes;
            var blocked = new float[outputs * k];
            algebra.MultiplyTransposed(w, kept, blocked, outputs, k, blockValues: 10 * k + 3);
            Assert.That(CudaDenseAlgebra.ProductBlockRows(outputs, k, 10 * k + 3), Is.EqualTo(10));
            Assert.That(Deviation.Relative<float>(blocked, expected), Is.LessThan(1e-5), $"W·Gᵀ in blocks of rows, lean {lean}");
            Assert.That(algebra.Held().ScratchBytes, Is.EqualTo(scratchBefore), $"no scratch grew, lean {lean}");
            Assert.That(Cuda.AllocatedBytes, Is.EqualTo(allocatedBefore), $"nothing left allocated, lean {lean}");
        }
    }

    /// <summary>
    /// The drift target made where G is kept (<see cref="CudaDenseAlgebra.TryDriftTargetTransposed"/>) is, to the bit,
    /// the host's T = W + W·Gᵀ from the same device product, transposed and zero-padded, and its shift is the host's
    /// <see cref="DriftCorrection.RelativeShift"/> summed in another order; a G the device does not hold gives null.
    /// Shapes off the 32-wide tiles, and more rows than one tile column.
    /// </summary>
    [TestCase(37, 150, 256, 128)]
    [TestCase(1000, 300, 384, 1024)]
    public void TheDriftTargetMadeOnTheDeviceIsTheHostsToTheBit(int outputs, int k, int paddedK, int paddedN)
    {
        var rng = new Random(outputs);
        var g = new float[k * k];
        for (int i = 0; i < g.Length; i++)
            g[i] = (float)(0.05 * (rng.NextDouble() - 0.5));
        var w = Random(rng, outputs * k);
        var values = Cuda.Allocate<float>(g.Length);
        values.CopyFrom(g);
        using var kept = new CudaResidentMatrix(_gpu, values, k);
        var product = new float[outputs * k];
        _gpu.MultiplyTransposed(w, kept, product, outputs, k);
        var hostTarget = new float[outputs * k];
        System.Numerics.Tensors.TensorPrimitives.Add(product, w, hostTarget);
        var expected = Converter.Regularize.Quantization.LinearQuantizer.TransposePadded(hostTarget, outputs, k, paddedK, paddedN);

        var made = _gpu.TryDriftTargetTransposed(w, kept, outputs, k, paddedK, paddedN)!.Value;
        Assert.That(made.Transposed, Is.EqualTo(expected), "T transposed and padded");
        double shift = Math.Sqrt(made.MovedSquared / made.NormSquared);
        Assert.That(shift, Is.EqualTo(Converter.Regularize.Quantization.DriftCorrection.RelativeShift(w, hostTarget)).Within(1e-10).Percent, "to 1e-12 of itself: the same terms summed in another order");
        Assert.That(shift, Is.GreaterThan(0));
        Assert.That(_gpu.TryDriftTargetTransposed(w, new HostResidentMatrix(g, k), outputs, k, paddedK, paddedN), Is.Null, "G on the host");

        // Made in place of a W held on the device: the same T, which stays there, and the same sums.
        using var into = Cuda.Allocate<float>((long)paddedK * paddedN);
        var inPlace = _gpu.TryDriftTargetInto(w, kept, outputs, k, paddedK, paddedN, into)!.Value;
        var left = new float[(long)paddedK * paddedN];
        into.CopyTo(left);
        Assert.That(left, Is.EqualTo(expected), "T made in place");
        Assert.That((inPlace.MovedSquared, inPlace.NormSquared), Is.EqualTo((made.MovedSquared, made.NormSquared)));
        Assert.That(_gpu.TryDriftTargetInto(w, new HostResidentMatrix(g, k), outputs, k, paddedK, paddedN, into), Is.Null, "G on the host");
    }

    /// <summary>
    /// A projected group's drift target made where W is held (<see cref="CudaDenseAlgebra.TryProjectedDriftTargetInto"/>)
    /// is, to the bit, the host's: W transposed and zero-padded plus the member's block of the steps
    /// (<see cref="DriftCorrection.AddSteps"/>), with the same sums added in another order; steps the device does not
    /// hold give null. Two members of one solve (offsets 0 and 37), shapes off the 32-wide tiles.
    /// </summary>
    [TestCase(37, 150, 256, 128, 0)]
    [TestCase(70, 300, 384, 128, 37)]
    public void TheProjectedDriftTargetMadeWhereWIsHeldIsTheHostsToTheBit(int outputs, int k, int paddedK, int paddedN, int offset)
    {
        var rng = new Random(outputs + offset);
        int columns = 37 + 70;
        var steps = new float[k * columns];
        for (int i = 0; i < steps.Length; i++)
            steps[i] = (float)(0.05 * (rng.NextDouble() - 0.5));
        var w = Random(rng, outputs * k);
        var expected = Converter.Regularize.Quantization.LinearQuantizer.TransposePadded(w, outputs, k, paddedK, paddedN);
        var (moved, norm) = DriftCorrection.AddSteps(expected, paddedN, steps, columns, offset, outputs, k);

        var values = Cuda.Allocate<float>(steps.Length);
        values.CopyFrom(steps);
        using var kept = new CudaResidentSteps(_gpu, values, k, columns);
        using var into = Cuda.Allocate<float>((long)paddedK * paddedN);
        into.Fill(0xFF);
        var made = _gpu.TryProjectedDriftTargetInto(w, kept, offset, outputs, k, paddedK, paddedN, into)!.Value;
        var left = new float[(long)paddedK * paddedN];
        into.CopyTo(left);
        Assert.That(left, Is.EqualTo(expected), "T transposed and padded, the padding written over the NaNs there");
        Assert.That(made.MovedSquared, Is.EqualTo(moved).Within(1e-10).Percent, "Σ (T − W)²: the same terms in another order");
        Assert.That(made.NormSquared, Is.EqualTo(norm).Within(1e-10).Percent, "Σ W²");
        Assert.That(made.MovedSquared, Is.GreaterThan(0));
        Assert.That(kept.HostValues(), Is.EqualTo(steps), "the steps brought down");
        Assert.That(_gpu.TryProjectedDriftTargetInto(w, new HostResidentSteps(steps, k, columns), offset, outputs, k, paddedK, paddedN, into), Is.Null, "steps on the host");
    }

    /// <summary>
    /// A projected sum's steps kept on the device (<see cref="CudaDenseAlgebra.TrySolveCrossStepsKept"/>) are the ones
    /// that come down from <see cref="CudaDenseAlgebra.TrySolveCross"/>; a lean run keeps them on the host, as it does G.
    /// </summary>
    [Test]
    public void KeptStepsAreTheSolveThatComesDown()
    {
        var rng = new Random(21);
        int k = 150, padded = 256, rows = 400, columns = 60;
        var x = Random(rng, rows * k);
        var y = Random(rng, rows * columns);
        var hostH = DampedHessian(x, k, padded, rows);
        foreach (bool lean in new[] { false, true })
        {
            using var algebra = new CudaDenseAlgebra(Cuda);
            if (lean)
                algebra.RunLean(1L << 30);
            float[] expected;
            using (var cross = algebra.CreateCrossAccumulator(k, columns))
            {
                cross.Add(x, y, rows);
                expected = algebra.TrySolveCross(cross, null, () => hostH, k, padded, 0.75 / rows)!;
            }
            using var again = algebra.CreateCrossAccumulator(k, columns);
            again.Add(x, y, rows);
            using var kept = algebra.TrySolveCrossStepsKept(again, null, () => hostH, k, padded, 0.75 / rows)!;
            Assert.That(kept, lean ? Is.TypeOf<HostResidentSteps>() : Is.TypeOf<CudaResidentSteps>());
            Assert.That((kept.Rows, kept.Columns), Is.EqualTo((k, columns)));
            Assert.That(kept.HostValues(), Is.EqualTo(expected), $"lean {lean}");
        }
    }

    /// <summary>The host's mean of xᵀx (padded × padded, zero past k) with 0.05 added to the diagonal: positive definite.</summary>
    private float[] DampedHessian(float[] x, int k, int padded, int rows)
    {
        var h = new float[padded * padded];
        using (var gram = _cpu.CreateGramAccumulator(k))
        {
            gram.Add(x, rows);
            gram.Mean(rows, padded).Values.CopyTo(h, 0);
        }
        for (int i = 0; i < padded; i++)
            h[i * padded + i] += 0.05f;
        return h;
    }

    /// <summary>G·Gᵀ + n·I (n×n, float64) for a random G: symmetric positive definite, dense off the diagonal.</summary>
    private static double[] RandomSpd(Random rng, int n)
    {
        var g = Random(rng, n * n);
        var spd = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int t = 0; t < n; t++)
                    s += g[i * n + t] * g[j * n + t];
                spd[i * n + j] = s + (i == j ? n : 0);
            }
        }
        return spd;
    }

    private static float[] Random(Random rng, int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
}
