using Converter.Compute;
using Converter.Regularize.Hadamard;

namespace Converter.Regularize.Hessian;

/// <summary>
/// A quant group's finalized Hessian (docs/exl3-format.md §3.2 finalize): H/count with σ·mean(diag) damping, padded to a
/// multiple of 128, plus the random input sign flips every tensor of the group shares. <see cref="FallbackReason"/>
/// is set when the Hessian is unusable (no rows, non-finite, or vanishing) and the group quantizes without feedback.
/// The damped H is on the host, or left on the GPU that summed it (<see cref="Resident"/>), whose solver reads it there
/// and whose single linear may take it (<see cref="TakeResident"/>); a host copy then comes down only when asked for.
/// </summary>
public sealed class GroupHessian : IDisposable
{
    /// <summary>Damping σ (§3.2, exllamav3's sigma_reg default).</summary>
    public const double DefaultSigma = 0.025;

    /// <summary>Below this mean diagonal the Hessian carries no information (§3.2 step 3).</summary>
    private const double MinDiagMean = 1e-20;

    private readonly Lock _gate = new();
    private readonly float[] _diagonal;
    private readonly int _users;
    private float[]? _damped;
    private IResidentMatrix? _resident;
    private bool _taken;

    private GroupHessian(int paddedK, float[]? damped, IResidentMatrix? resident, float[] diagonal, double diagMean, float[] inputSigns, long count,
        string? fallbackReason, int users = 0)
    {
        PaddedK = paddedK;
        _damped = damped;
        _resident = resident;
        _diagonal = diagonal;
        _users = users;
        DiagMean = diagMean;
        InputSigns = inputSigns;
        Count = count;
        FallbackReason = fallbackReason;
    }

    public int PaddedK { get; }

    /// <summary>Damped H in the original input basis (PaddedK², row-major); null in fallback. Comes down from the device on first use.</summary>
    public float[]? Damped
    {
        get
        {
            lock (_gate)
            {
                if (_damped is null && _resident is not null)
                    _damped = _resident.ToHost();
                else if (_damped is null && _taken)
                    throw new InvalidOperationException("the damped Hessian was handed to its linear's solver and is no longer here");
                return _damped;
            }
        }
    }

    /// <summary>The damped H on the device that summed it, or null (on the host, in fallback, or taken).</summary>
    public IResidentMatrix? Resident
    {
        get
        {
            lock (_gate)
                return _resident;
        }
    }

    public double DiagMean { get; }

    /// <summary>su_sign: ±1 per input channel, shared by the group (§3.2 step 6).</summary>
    public float[] InputSigns { get; }

    public long Count { get; }

    public string? FallbackReason { get; }

    /// <summary>Finalizes an accumulated sum on the host. <paramref name="rng"/> draws the input signs.</summary>
    public static GroupHessian Finalize(HessianAccumulator accumulator, int paddedK, double sigma, Random rng) =>
        Finalize(accumulator, paddedK, sigma, rng, onDevice: false, users: 0);

    /// <summary>
    /// Finalizes an accumulated sum; with <paramref name="onDevice"/> the damped H stays on the device that summed it
    /// (where there is one). <paramref name="users"/> is how many linears will read it: a group of one lets that
    /// linear's solver take the device copy (<see cref="TakeResident"/>).
    /// </summary>
    public static GroupHessian Finalize(HessianAccumulator accumulator, int paddedK, double sigma, Random rng, bool onDevice, int users)
    {
        var signs = RandomSigns(paddedK, rng);
        var noDiagonal = new float[paddedK];
        if (accumulator.Count == 0)
            return new GroupHessian(paddedK, null, null, noDiagonal, 0, signs, 0, "no calibration rows reached this layer");
        var resident = onDevice ? accumulator.MeanInPlace(paddedK) : null;
        var mean = resident is null ? accumulator.Mean(paddedK) : null;
        var diagonal = resident?.Diagonal ?? mean!.Diagonal;
        double diagSum = 0;
        foreach (double d in diagonal)
            diagSum += d;
        // Padded input channels are always zero: their mean is over the padded width as in exllamav3, where the
        // inputs are zero-extended before accumulation.
        double diagMean = diagSum / paddedK;
        bool finite = resident?.Values.AllFinite() ?? Formats.Numerics.FiniteCheck.AllFinite(mean!.Values);
        string? reason = !double.IsFinite(diagMean) || !finite ? "Hessian has non-finite values"
            : diagMean < MinDiagMean ? $"Hessian mean diagonal {diagMean:E2} is vanishing"
            : null;
        if (reason is not null)
        {
            resident?.Values.Dispose();
            return new GroupHessian(paddedK, null, null, noDiagonal, diagMean, signs, accumulator.Count, reason);
        }
        float damping = (float)(sigma * diagMean);
        // The damped diagonal as the host adds to it: the mean's float diagonal is (float)(sum[i, i] / count).
        var dampedDiagonal = new float[paddedK];
        for (int i = 0; i < paddedK; i++)
            dampedDiagonal[i] = (i < diagonal.Length ? (float)diagonal[i] : 0f) + damping;
        if (resident is not null)
        {
            resident.Values.AddToDiagonal(damping);
            return new GroupHessian(paddedK, null, resident.Values, dampedDiagonal, diagMean, signs, accumulator.Count, null, users);
        }
        var h = mean!.Values;
        for (int i = 0; i < paddedK; i++)
            h[i * paddedK + i] += damping;
        return new GroupHessian(paddedK, h, null, dampedDiagonal, diagMean, signs, accumulator.Count, null);
    }

    /// <summary>
    /// Hands the device copy of the damped H over to the caller, which may then change it (rotate it in place) and must
    /// dispose it: only in a group of one linear, once, and only when no host copy is needed later. Null otherwise.
    /// </summary>
    public IResidentMatrix? TakeResident()
    {
        lock (_gate)
        {
            if (_users != 1 || _resident is null)
                return null;
            var taken = _resident;
            _resident = null;
            _taken = true;
            return taken;
        }
    }

    /// <summary>
    /// H in the basis the quantizer codes (§3.4): Had·diag(s)·H·diag(s)·Had. With s = the sign flips this is
    /// exllamav3's rotation; with s = su (signs × input scales) it is the exact Hessian of the scaled basis.
    /// </summary>
    public float[] InQuantizedBasis(ReadOnlySpan<float> inputScale)
    {
        var damped = Damped ?? throw new InvalidOperationException("no Hessian in fallback mode");
        int k = PaddedK;
        var h = (float[])damped.Clone();
        var scale = inputScale.ToArray();
        Parallel.For(0, k, i =>
        {
            var row = h.AsSpan(i * k, k);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, scale, row);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, scale[i], row);
        });
        HadamardTransform.LeftMultiply(h, k, k);
        HadamardTransform.RightMultiply(h, k, k);
        return h;
    }

    /// <summary>Diagonal of the damped Hessian (for the out-scales heuristic of §3.3); zeros in fallback. Never needs a host copy of H.</summary>
    public float[] Diagonal() => (float[])_diagonal.Clone();

    public static float[] RandomSigns(int count, Random rng)
    {
        var signs = new float[count];
        for (int i = 0; i < count; i++)
            signs[i] = rng.Next(2) == 0 ? 1f : -1f;
        return signs;
    }

    /// <summary>Frees the device copy of H, if it is still here.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _resident?.Dispose();
            _resident = null;
        }
    }
}
