using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Regularize.Quantization;

namespace Converter.Cuda.Quantization;

/// <summary>
/// H' and L_u formed on a GPU (<see cref="CudaLdlqSolver.FactorInBasis"/>): L_u stays on the device for the block loop;
/// H' stays there too for the proxy traces, except in a lean run, where it comes down before the factor is formed (the
/// factor then takes its device memory: a 70B down_proj's H' is 3.3 GB the device need not hold twice).
/// </summary>
internal sealed class DeviceBasisFactor : BasisFactor
{
    private readonly CudaDenseAlgebra _algebra;
    private DeviceBuffer<float>? _basis;
    private float[]? _hostBasis;
    private DeviceBuffer<float>? _factor;

    /// <param name="basis">H' on the device, owned from now on; null when it is on the host only.</param>
    /// <param name="hostBasis">H' on the host, when it came down.</param>
    /// <param name="factor">L_u on the device, owned from now on; null when H' did not factor.</param>
    /// <param name="arrival">The solver's count of this problem as on its way to the block loop: it arrives there, or its factor goes.</param>
    public DeviceBasisFactor(CudaDenseAlgebra algebra, int k, int retries, DeviceBuffer<float>? basis, float[]? hostBasis, DeviceBuffer<float>? factor,
        CudaLdlqSolver.Expected? arrival = null)
        : base(k, retries, factor is not null)
    {
        if (basis is null && hostBasis is null)
            throw new ArgumentException("H' must be somewhere");
        _algebra = algebra;
        _basis = basis;
        _hostBasis = hostBasis;
        _factor = factor;
        Arrival = arrival;
    }

    /// <summary>Stops the solver expecting this problem at the block loop (<see cref="CudaLdlqSolver"/>'s batches wait for expected ones).</summary>
    public CudaLdlqSolver.Expected? Arrival { get; }

    /// <summary>L_u on the device, for the block loop; null when not factored or released.</summary>
    public DeviceBuffer<float>? DeviceFactor => _factor;

    /// <summary>The algebra whose GPU holds the buffers.</summary>
    public CudaDenseAlgebra Algebra => _algebra;

    public override float[] BasisHessian()
    {
        if (_hostBasis is null)
        {
            var host = new float[(long)K * K];
            _basis!.CopyTo(host);
            _hostBasis = host;
        }
        return _hostBasis;
    }

    public override float[]? HostFactor()
    {
        if (_factor is null)
            return null;
        var host = new float[(long)K * K];
        _factor.CopyTo(host);
        return host;
    }

    public override (double Error, double Weight) ProxyTraces(ReadOnlySpan<float> w, ReadOnlySpan<float> q, int n, IDenseAlgebra algebra) =>
        _basis is not null && ReferenceEquals(algebra, _algebra) ? _algebra.ProxyTraces(_basis, w, q, K, n) : base.ProxyTraces(w, q, n, algebra);

    /// <summary>
    /// With the target and Q held on this device (<see cref="DeviceLinearTarget"/>, after its block loop) and H' here,
    /// the traces read all three in place: only 2k sums come down, where the host path took T and Q up again.
    /// </summary>
    public override (double Error, double Weight) ProxyTraces(LinearTarget target, Func<float[]> q, IDenseAlgebra algebra)
    {
        if (_basis is not null && ReferenceEquals(algebra, _algebra) && target is DeviceLinearTarget { MatrixTaken: true } held && held.Context == _algebra.Context)
        {
            var (w, quantized) = held.Held();
            return _algebra.ProxyTracesInPlace(_basis, w, quantized, K, target.N);
        }
        return base.ProxyTraces(target, q, algebra);
    }

    public override void ReleaseFactor()
    {
        Arrival?.Arrive();
        _factor?.Dispose();
        _factor = null;
    }

    protected override void Dispose(bool disposing)
    {
        _basis?.Dispose();
        _basis = null;
        ReleaseFactor();
    }
}
