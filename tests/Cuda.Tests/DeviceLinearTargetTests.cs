using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Quantization;
using Converter.Cuda.Trellis;
using Converter.Regularize.Hessian;
using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Regularize.Reconstruction;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// A linear's regularization held on the GPU (<see cref="DeviceLinearTarget"/>) against the host arrays
/// (<see cref="HostLinearTarget"/>): every step to the bit, and the whole quantizer's result with
/// <see cref="LinearQuantizerSettings.TargetOnDevice"/> on and off (same GPU solver and encoder) byte for byte.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class DeviceLinearTargetTests : SolverFixture
{
    private static readonly CodebookTableCache Tables = new();
    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>W (k, n) with loud and quiet rows and columns, and (where asked) an all-zero column and row.</summary>
    private static float[] Weight(int k, int n, bool zeros, int seed)
    {
        var rng = new Random(seed);
        var w = new float[k * n];
        for (int r = 0; r < k; r++)
        {
            for (int j = 0; j < n; j++)
                w[r * n + j] = (float)(Normal(rng) * 0.02 * (r % 13 == 0 ? 6 : 1) * (j % 17 == 0 ? 0.1 : 1));
        }
        if (zeros)
        {
            for (int r = 0; r < k; r++)
                w[r * n + 5] = 0;
            Array.Clear(w, 7 * n, n);
        }
        return w;
    }

    [TestCase(256, 384, false)]
    [TestCase(384, 128, true)]
    [TestCase(1024, 2048, true)]
    public void EveryStepIsTheHostsToTheBit(int k, int n, bool zeros)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, 4);
        var w = Weight(k, n, zeros, k + n);
        using var host = new HostLinearTarget((float[])w.Clone(), k, n);
        using var held = Solver.Hold(k, n, encoder);
        Assert.That(held, Is.InstanceOf<DeviceLinearTarget>(), "a GPU encoder on the solver's device holds the target there");
        Assert.That(held.Loaded, Is.False);
        held.Load((float[])w.Clone());

        var columns = host.ColumnSquares();
        Assert.That(held.ColumnSquares(), Is.EqualTo(columns), "column sums of squares");
        var rng = new Random(3);
        var signs = Enumerable.Range(0, n).Select(_ => rng.Next(2) == 0 ? -1f : 1f).ToArray();
        var (_, inverse) = LinearRegularizer.OutputScales(columns, k, signs, applyOutScales: true);
        host.ScaleColumnsAndRotateRows(inverse);
        held.ScaleColumnsAndRotateRows(inverse);
        Assert.That(held.HostWeight(), Is.EqualTo(host.HostWeight()), "W after the output side");

        var rows = host.RowSquares();
        Assert.That(held.RowSquares(), Is.EqualTo(rows), "row sums of squares");
        var inputSigns = Enumerable.Range(0, k).Select(_ => rng.Next(2) == 0 ? -1f : 1f).ToArray();
        var su0 = LinearRegularizer.InputScales(rows, n, inputSigns, table.Rms);
        host.FormTarget(su0);
        held.FormTarget(su0);
        Assert.That(held.HostTarget(), Is.EqualTo(host.HostTarget()), "the target");
        var means = host.TileMeanSquares();
        Assert.That(held.TileMeanSquares(), Is.EqualTo(means), "tile mean squares");
        var picks = ScaleTileSampler.Picks(means, k / TileLayout.Side, n / TileLayout.Side);
        Assert.That(held.Tiles(picks), Is.EqualTo(host.Tiles(picks)), "the picked tiles");
        Assert.That(held.SampleTiles(), Is.EqualTo(ScaleTileSampler.Sample(host.HostTarget(), k, n)), "the scale search's sample");

        var su = su0.Select(v => LinearRegularizer.RoundToHalf(v / 1.03f)).ToArray();
        host.FormTarget(su);
        held.FormTarget(su);
        Assert.That(held.HostTarget(), Is.EqualTo(host.HostTarget()), "the target formed again from W");
    }

    /// <summary>
    /// Also in a lean run (a 70B in 20 GB holds its targets when the plan has room): H' then comes down before the
    /// factor is formed, so the traces read the held target's host copy in stripes.
    /// </summary>
    [TestCase(512, 1024, 4, false)]
    [TestCase(1024, 384, 2, false)]
    [TestCase(256, 768, 6, false)]
    [TestCase(1024, 384, 4, true)]
    [TestCase(256, 768, 3, true)]
    public void TheQuantizerGivesTheSameLinearWithTheTargetOnTheDevice(int inFeatures, int outFeatures, int bits, bool lean)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        var weight = Weight(outFeatures, inFeatures, zeros: false, inFeatures + bits);
        using var hessian = Hessian(inFeatures, new Random(bits));
        using var leanAlgebra = lean ? new CudaDenseAlgebra(Cuda) : null;
        leanAlgebra?.RunLean(1L << 30);
        var algebra = leanAlgebra ?? Algebra;
        var solver = leanAlgebra is null ? Solver : new CudaLdlqSolver(leanAlgebra);
        QuantizedLinear Quantize(bool onDevice, HeldKinds kinds)
        {
            var settings = new LinearQuantizerSettings(OutScalesMode.Auto)
            {
                Algebra = algebra,
                Ldlq = new WatchedSolver(solver, kinds),
                Tuning = QuantizerTuning.Default,
                TargetOnDevice = onDevice,
            };
            return LinearQuantizer.Quantize("test", weight, outFeatures, inFeatures, null, hessian, table, encoder, settings, new Random(11));
        }

        var hostKinds = new HeldKinds();
        var deviceKinds = new HeldKinds();
        var onHost = Quantize(false, hostKinds);
        var onDevice = Quantize(true, deviceKinds);
        Assert.That(hostKinds.Device, Is.Zero, "TargetOnDevice off keeps the target on the host");
        Assert.That(deviceKinds.Device, Is.EqualTo(1), "TargetOnDevice on holds it on the GPU");
        Assert.That(onDevice.Fallback, Is.Null);
        Assert.That(onDevice.Trellis, Is.EqualTo(onHost.Trellis), "the written trellis");
        Assert.That(onDevice.Decoded, Is.EqualTo(onHost.Decoded), "Q");
        Assert.That(onDevice.Suh, Is.EqualTo(onHost.Suh));
        Assert.That(onDevice.Svh, Is.EqualTo(onHost.Svh));
        Assert.That(onDevice.GlobalScale, Is.EqualTo(onHost.GlobalScale));
        Assert.That(onDevice.ProxyError, Is.EqualTo(onHost.ProxyError).Within(1e-9).Percent, "the proxy error, traced in place");
        Console.WriteLine($"{inFeatures}→{outFeatures} K={bits}{(lean ? " lean" : "")}: proxy {onHost.ProxyError:E6} / {onDevice.ProxyError:E6}; regularize {onHost.RegularizeSeconds:F3} / {onDevice.RegularizeSeconds:F3} s, search {onHost.ScaleSearchSeconds:F3} / {onDevice.ScaleSearchSeconds:F3} s, finish {onHost.FinishSeconds:F3} / {onDevice.FinishSeconds:F3} s");
    }

    /// <summary>
    /// The drift target made in place of a W held on the device (<see cref="DriftCorrection.TargetInto"/>) quantizes
    /// to the linear the host-held one gives (T made by the same device product and downloaded), with the same shift.
    /// </summary>
    [TestCase(320, 640, 4)]
    [TestCase(200, 96, 3)]
    public void TheDriftTargetMadeWhereWIsHeldQuantizesAsTheDownloadedOne(int inFeatures, int outFeatures, int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        int tokens = 3 * inFeatures;
        var rng = new Random(inFeatures + outFeatures);
        var quantized = Enumerable.Range(0, tokens * inFeatures).Select(_ => (float)Normal(rng)).ToArray();
        var original = quantized.Select(v => v + 0.1f * (float)Normal(rng)).ToArray();
        var weight = Weight(outFeatures, inFeatures, zeros: false, bits);
        var accumulator = new HessianAccumulator(inFeatures);
        accumulator.Add(quantized, tokens);
        using var hessian = GroupHessian.Finalize(accumulator, LinearQuantizer.Pad(inFeatures), GroupHessian.DefaultSigma, new Random(1));
        var cross = new DriftAccumulator(inFeatures, Algebra);
        cross.Add(quantized, original, tokens);
        using var correction = DriftCorrection.For(hessian, cross, 1.0, Algebra)!;
        var settings = new LinearQuantizerSettings(OutScalesMode.Auto) { Algebra = Algebra, Ldlq = Solver, Tuning = QuantizerTuning.Default, TargetOnDevice = true };
        int k = LinearQuantizer.Pad(inFeatures), n = LinearQuantizer.Pad(outFeatures);
        (QuantizedLinear, double) Quantize(LinearTarget held)
        {
            double shift = correction.TargetInto(held, 0, weight, outFeatures, Algebra);
            return (LinearQuantizer.QuantizeHeld("test", held, outFeatures, inFeatures, null, hessian, table, encoder, settings, new Random(11)), shift);
        }

        var (onHost, hostShift) = Quantize(new HostLinearTarget(k, n));
        var (onDevice, deviceShift) = Quantize(LinearQuantizer.Hold(k, n, hessian, encoder, settings));
        Assert.That(deviceShift, Is.EqualTo(hostShift), "the same sums");
        Assert.That(deviceShift, Is.GreaterThan(0));
        Assert.That(onDevice.Trellis, Is.EqualTo(onHost.Trellis), "the written trellis");
        Assert.That(onDevice.Decoded, Is.EqualTo(onHost.Decoded), "Q");
        Assert.That(onDevice.Suh, Is.EqualTo(onHost.Suh));
        Assert.That(onDevice.Svh, Is.EqualTo(onHost.Svh));
        Assert.That(onDevice.ProxyError, Is.EqualTo(onHost.ProxyError).Within(1e-9).Percent);
    }

    /// <summary>
    /// The reconstruction made where LDLQ left Q (<see cref="LinearTarget.Reconstruction"/>) is the host's from the
    /// host's Q to the bit, padding trimmed (widths that are not multiples of 128 or of the kernel's 32-wide tiles); Q
    /// itself never came down (the proxy traces read it in place); kept by the weight cache as the host copy's, a
    /// product by it gives what a fresh upload of that copy gives.
    /// </summary>
    [TestCase(320, 640, 4)]
    [TestCase(200, 96, 3)]
    [TestCase(1024, 2050, 2)]
    public void TheReconstructionMadeWhereQIsHeldIsTheHostsToTheBit(int inFeatures, int outFeatures, int bits)
    {
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        var weight = Weight(outFeatures, inFeatures, zeros: false, inFeatures + bits);
        using var hessian = Hessian(inFeatures, new Random(bits));
        var settings = new LinearQuantizerSettings(OutScalesMode.Auto) { Algebra = Algebra, Ldlq = Solver, Tuning = QuantizerTuning.Default, TargetOnDevice = true };
        int k = LinearQuantizer.Pad(inFeatures), n = LinearQuantizer.Pad(outFeatures);
        QuantizedLinear Quantize(LinearTarget held)
        {
            held.Load(LinearQuantizer.TransposePadded(weight, outFeatures, inFeatures, k, n));
            return LinearQuantizer.QuantizeHeld("test", held, outFeatures, inFeatures, null, hessian, table, encoder, settings, new Random(11), reconstructWhereHeld: true);
        }

        var onHost = Quantize(new HostLinearTarget(k, n));
        var onDevice = Quantize(LinearQuantizer.Hold(k, n, hessian, encoder, settings));
        Assert.That(onHost.Resident, Is.Null, "a host target keeps Q for the host's reconstruction");
        Assert.That(onDevice.Decoded, Is.Null, "Q stayed on the device: nothing on the host read it");
        Assert.That(onDevice.Trellis, Is.EqualTo(onHost.Trellis), "the written trellis");
        Assert.That(onDevice.ProxyError, Is.EqualTo(onHost.ProxyError).Within(1e-9).Percent, "the proxy error, from Q in place");
        using var resident = onDevice.Resident!;
        Assert.That((resident.Rows, resident.Columns), Is.EqualTo((outFeatures, inFeatures)));
        var expected = LinearReconstruction.ToHfLayout(LinearReconstruction.FromDecoded(onHost.Decoded!, k, n, onHost.Suh, onHost.Svh), k, n, outFeatures, inFeatures);
        var made = new float[(long)outFeatures * inFeatures];
        resident.CopyTo(made);
        Assert.That(made, Is.EqualTo(expected), "the host's reconstruction to the bit");

        var into = new float[made.Length];
        resident.CopyTo(into);
        Assert.That(into, Is.EqualTo(made), "a second download gives the same values");
        resident.KeepAsCopyOf(made);
        int m = 5;
        var x = Enumerable.Range(0, m * inFeatures).Select(i => (float)Math.Sin(i)).ToArray();
        var viaKept = new float[m * outFeatures];
        double uploads = Algebra.WeightUploadSeconds;
        Algebra.Linear(x, made, default, viaKept, m, outFeatures, inFeatures);
        Assert.That(Algebra.WeightUploadSeconds, Is.EqualTo(uploads), "no upload: the cache held the kept copy");
        using var fresh = new CudaDenseAlgebra(Cuda);
        var viaUpload = new float[m * outFeatures];
        fresh.Linear(x, (float[])made.Clone(), default, viaUpload, m, outFeatures, inFeatures);
        Assert.That(viaKept, Is.EqualTo(viaUpload), "the kept copy holds the host array's values");
    }

    /// <summary>A finalized Hessian of correlated random inputs with a few loud channels.</summary>
    private static GroupHessian Hessian(int k, Random rng)
    {
        using var accumulator = new HessianAccumulator(k);
        int tokens = 2 * k;
        var x = new float[tokens * k];
        for (int t = 0; t < tokens; t++)
        {
            float previous = 0;
            for (int i = 0; i < k; i++)
            {
                float z = (float)(rng.NextDouble() * 2 - 1) * (i % 37 == 0 ? 8 : 1);
                x[t * k + i] = z + 0.5f * previous;
                previous = z;
            }
        }
        accumulator.Add(x, tokens);
        return GroupHessian.Finalize(accumulator, LinearQuantizer.Pad(k), GroupHessian.DefaultSigma, rng);
    }

    /// <summary>How many targets a solver held on a GPU.</summary>
    private sealed class HeldKinds
    {
        public int Device { get; set; }
    }

    /// <summary>The GPU solver, counting the targets it holds on the device; every call goes to it.</summary>
    private sealed class WatchedSolver(CudaLdlqSolver inner, HeldKinds kinds) : ILdlqSolver
    {
        public string Device => inner.Device;

        public BlockLdlResult Factor(float[] hessian, int k, double sigma, IDenseAlgebra algebra) => inner.Factor(hessian, k, sigma, algebra);

        public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, float[]? factor, ITileEncoder encoder, float[]? quantizedInto = null) =>
            inner.Quantize(wr, k, n, factor, encoder, quantizedInto);

        public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, BasisFactor? factor, ITileEncoder encoder, float[]? quantizedInto = null) =>
            inner.Quantize(wr, k, n, factor, encoder, quantizedInto);

        public BasisFactor FactorInBasis(GroupHessian hessian, ReadOnlySpan<float> inputScale, double sigma, IDenseAlgebra algebra, bool lastUse = false) =>
            inner.FactorInBasis(hessian, inputScale, sigma, algebra, lastUse);

        public LinearTarget Hold(int k, int n, ITileEncoder encoder)
        {
            var held = inner.Hold(k, n, encoder);
            if (held is DeviceLinearTarget)
                kinds.Device++;
            return held;
        }

        public HeldLdlqResult Quantize(LinearTarget target, BasisFactor? factor, ITileEncoder encoder) => inner.Quantize(target, factor, encoder);
    }
}
