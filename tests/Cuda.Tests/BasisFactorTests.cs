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
        return GroupHessian.Finalize(accumulator, k, GroupHessian.DefaultSigma, rng);
    }

    private static float[] Download(DeviceBuffer<float> buffer)
    {
        var host = new float[buffer.Count];
        buffer.CopyTo(host);
        return host;
    }
}
