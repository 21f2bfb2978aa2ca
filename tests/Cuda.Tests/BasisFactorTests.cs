using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Quantization;
using Converter.Cuda.Trellis;
using Converter.Regularize.Hadamard;
using Converter.Regularize.Hessian;
using Converter.Regularize.Quantization;
using Converter.Trellis.Codebooks;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The Hessian's rotation into the quantized basis and its factor formed on the device (<see cref="CudaLdlqSolver.FactorInBasis"/>)
/// against the host's (<see cref="GroupHessian.InQuantizedBasis"/>, then the same device Cholesky): the rotation runs
/// the host's operations in its order, so H', the factor, LDLQ's output and the proxy error must all be the host
/// path's to the bit, in a normal run (H' kept on the device) and in a lean one (H' brought down, L_u in its memory).
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class BasisFactorTests : GpuFixture
{
    private static readonly CodebookTableCache Tables = new();
    private CudaDenseAlgebra _algebra = null!;
    private CudaDenseAlgebra _leanAlgebra = null!;

    [OneTimeSetUp]
    public void CreateAlgebras()
    {
        _algebra = new CudaDenseAlgebra(Cuda);
        _leanAlgebra = new CudaDenseAlgebra(Cuda);
        _leanAlgebra.RunLean(1L << 30);
    }

    [OneTimeTearDown]
    public void DisposeAlgebras()
    {
        _algebra?.Dispose();
        _leanAlgebra?.Dispose();
    }

    [TestCase(128, 128)]
    [TestCase(256, 384)]
    [TestCase(384, 100)]
    public void DeviceRotationsAreTheHostsToTheBit(int rows, int cols)
    {
        var rng = new Random(rows + cols);
        var m = Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var module = Cuda.Module(CudaKernels.HadamardSource, new Dictionary<string, string>());
        using var device = Cuda.Allocate<float>(m.Length);

        var left = (float[])m.Clone();
        HadamardTransform.LeftMultiply(left, rows, cols);
        device.CopyFrom(m);
        DeviceHadamard.LeftMultiply(module, device.Pointer, rows, cols);
        Assert.That(Download(device), Is.EqualTo(left), "Had·M");

        if (cols % HadamardTransform.BlockSize == 0)
        {
            var right = (float[])m.Clone();
            HadamardTransform.RightMultiply(right, rows, cols);
            device.CopyFrom(m);
            DeviceHadamard.RightMultiply(module, device.Pointer, rows, cols);
            Assert.That(Download(device), Is.EqualTo(right), "M·Had");
        }
    }

    [TestCase(256, false)]
    [TestCase(512, false)]
    [TestCase(512, true)]
    public void FactorInBasisIsTheHostPathsToTheBit(int k, bool lean)
    {
        var algebra = lean ? _leanAlgebra : _algebra;
        var solver = new CudaLdlqSolver(algebra);
        var rng = new Random(k);
        var hessian = Hessian(k, rng);
        // Signs × scales of several magnitudes, as su is: the scaling's rounding must match too.
        var su = Enumerable.Range(0, k).Select(i => LinearRegularizer.RoundToHalf((float)((rng.Next(2) * 2 - 1) * (0.01 + rng.NextDouble())))).ToArray();

        using var host = HostBasisFactor.Of(solver, hessian, su, GroupHessian.DefaultSigma, algebra);
        using var device = solver.FactorInBasis(hessian, su, GroupHessian.DefaultSigma, algebra);
        Assert.That(device, Is.TypeOf<DeviceBasisFactor>());
        Assert.That(device.Factored, Is.True);
        Assert.That(device.Retries, Is.EqualTo(host.Retries));
        Assert.That(device.BasisHessian(), Is.EqualTo(host.BasisHessian()), "H'");
        Assert.That(device.HostFactor(), Is.EqualTo(host.HostFactor()), "L_u");

        int n = 256, bits = 3;
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var wr = Enumerable.Range(0, k * n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * table.Rms)).ToArray();
        using var encoder = new CudaTileEncoder(Cuda, table.Memory, bits);
        var expected = solver.Quantize(wr, k, n, host.HostFactor(), encoder);
        var actual = solver.Quantize(wr, k, n, device, encoder);
        Assert.That(actual.States, Is.EqualTo(expected.States), "LDLQ with the device's L_u in place");
        Assert.That(ProxyError.Compute(wr, actual.Quantized, device, n, algebra),
            Is.EqualTo(ProxyError.Compute(wr, expected.Quantized, host.BasisHessian(), k, n, algebra)), "the proxy with the device's H'");

        device.ReleaseFactor();
        Assert.That(device.HostFactor(), Is.Null);
        Assert.Throws<InvalidOperationException>(() => solver.Quantize(wr, k, n, device, encoder), "a released factor is not silently dropped");
    }

    [Test]
    public void AHessianThatNeverFactorsKeepsItsBasisForTheProxy()
    {
        const int k = 128;
        var solver = new CudaLdlqSolver(_algebra);
        // A rank-one Hessian: the σ damping of finalize keeps it positive definite, so break it afterwards.
        var hessian = Hessian(k, new Random(5));
        hessian.Damped![3 * k + 3] = -1e6f;
        var ones = Enumerable.Repeat(1f, k).ToArray();
        using var host = HostBasisFactor.Of(solver, hessian, ones, GroupHessian.DefaultSigma, _algebra);
        using var device = solver.FactorInBasis(hessian, ones, GroupHessian.DefaultSigma, _algebra);
        Assert.That(host.Factored, Is.False);
        Assert.That(device.Factored, Is.False);
        Assert.That(device.Retries, Is.EqualTo(host.Retries));
        Assert.That(device.BasisHessian(), Is.EqualTo(host.BasisHessian()));
    }

    [TestCase(256, 2)]
    [TestCase(384, 1)]
    public void AHessianLeftOnTheDeviceFinalizesAndFactorsAsOneBroughtDown(int k, int users)
    {
        var solver = new CudaLdlqSolver(_algebra);
        var x = Inputs(k, new Random(k));
        using var down = Finalized(k, x, onDevice: false, users);
        using var left = Finalized(k, x, onDevice: true, users);
        Assert.That(left.Resident, Is.TypeOf<CudaResidentMatrix>());
        Assert.That(left.DiagMean, Is.EqualTo(down.DiagMean));
        Assert.That(left.Diagonal(), Is.EqualTo(down.Diagonal()));
        Assert.That(left.InputSigns, Is.EqualTo(down.InputSigns));

        var su = Enumerable.Range(0, k).Select(i => LinearRegularizer.RoundToHalf(down.InputSigns[i] * (float)(0.5 + i % 7 * 0.1))).ToArray();
        using var expected = solver.FactorInBasis(down, su, GroupHessian.DefaultSigma, _algebra);
        // Not the last use: the device copy is copied, and stays for the group's other linears.
        using (var copied = solver.FactorInBasis(left, su, GroupHessian.DefaultSigma, _algebra))
        {
            Assert.That(copied.BasisHessian(), Is.EqualTo(expected.BasisHessian()));
            Assert.That(copied.HostFactor(), Is.EqualTo(expected.HostFactor()));
        }
        Assert.That(left.Resident, Is.Not.Null);
        using var last = solver.FactorInBasis(left, su, GroupHessian.DefaultSigma, _algebra, lastUse: true);
        Assert.That(last.BasisHessian(), Is.EqualTo(expected.BasisHessian()));
        Assert.That(last.HostFactor(), Is.EqualTo(expected.HostFactor()));
        if (users == 1)
        {
            Assert.That(left.Resident, Is.Null, "a group's only linear takes the device copy and rotates it in place");
            Assert.Throws<InvalidOperationException>(() => _ = left.Damped);
        }
        else
        {
            Assert.That(left.Resident, Is.Not.Null, "a group of several linears keeps it for the others");
            Assert.That(left.Damped, Is.EqualTo(down.Damped), "and brings it down to the bit when asked");
        }
    }

    [Test]
    public void ANonFiniteMeanLeftOnTheDeviceFallsBackAsOnTheHost()
    {
        const int k = 128;
        var x = Inputs(k, new Random(3));
        // Finite rows (so none is dropped) whose squares overflow float: the mean has ±Inf.
        x[5 * k + 7] = 1e20f;
        using var down = Finalized(k, x, onDevice: false, 1);
        using var left = Finalized(k, x, onDevice: true, 1);
        Assert.That(down.FallbackReason, Is.EqualTo("Hessian has non-finite values"));
        Assert.That(left.FallbackReason, Is.EqualTo(down.FallbackReason));
        Assert.That(left.Resident, Is.Null);
        Assert.That(left.Damped, Is.Null);
    }

    private GroupHessian Finalized(int k, float[] x, bool onDevice, int users)
    {
        using var accumulator = new HessianAccumulator(k, _algebra);
        accumulator.Add(x, x.Length / k);
        return GroupHessian.Finalize(accumulator, k, GroupHessian.DefaultSigma, new Random(7), onDevice, users);
    }

    /// <summary>A finalized Hessian of correlated random inputs with a few loud channels.</summary>
    private static GroupHessian Hessian(int k, Random rng)
    {
        using var accumulator = new HessianAccumulator(k);
        var x = Inputs(k, rng);
        accumulator.Add(x, x.Length / k);
        return GroupHessian.Finalize(accumulator, k, GroupHessian.DefaultSigma, rng);
    }

    /// <summary>2k rows of correlated random inputs with every 37th channel loud.</summary>
    private static float[] Inputs(int k, Random rng)
    {
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
        return x;
    }

    private static float[] Download(DeviceBuffer<float> buffer)
    {
        var host = new float[buffer.Count];
        buffer.CopyTo(host);
        return host;
    }
}
