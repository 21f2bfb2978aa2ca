using System.Numerics.Tensors;
using Converter.Compute;
using Converter.Regularize.Hessian;

namespace Converter.Regularize.Quantization;

/// <summary>
/// The drift-aware quantization target of a linear group (asymmetric calibration, GPTAQ-style; issue 13). LDLQ
/// minimizes ‖X̃(Ŵ − T)ᵀ‖² for the quantized stream's inputs X̃ (H = X̃ᵀX̃/N). With T = W that makes the quantized
/// model match what the original weight computes on the quantized stream; what should be matched is the original
/// model's output XWᵀ on its own inputs X. ‖X̃Ŵᵀ − XWᵀ‖² = ‖X̃(Ŵ − T)ᵀ‖² + const with
/// Tᵀ = Wᵀ + H⁻¹·X̃ᵀ(X − X̃)/N·Wᵀ, so quantizing T instead of W (everything else unchanged) targets the original
/// model. H is the damped Hessian LDLQ uses, which makes T the ridge solution (damping pulls T toward W), and a
/// strength α scales the step: Tᵀ = Wᵀ + G·Wᵀ with G = α·H⁻¹·C, computed once per group and applied per linear. G is
/// kept where it was solved (a GPU's memory) until the group's linears are done, then disposed. A group with fewer
/// outputs than inputs solves for the steps G·Wᵀ = α·H⁻¹·(C·Wᵀ) directly (<see cref="DriftAccumulator.Projects"/>).
/// </summary>
public sealed class DriftCorrection : IDisposable
{
    private readonly IResidentMatrix? _g;
    private readonly IResidentSteps? _steps;
    private readonly CrossProjection? _projection;
    private readonly Lazy<float[]>? _hostSteps;

    private DriftCorrection(IResidentMatrix? g, IResidentSteps? steps, CrossProjection? projection, int features)
    {
        _g = g;
        _steps = steps;
        _projection = projection;
        _hostSteps = steps is null ? null : new Lazy<float[]>(steps.HostValues);
        Features = features;
    }

    /// <summary>Input width k (unpadded).</summary>
    public int Features { get; }

    /// <summary>
    /// Whether the correction holds its members' steps W·Gᵀ (from a projected cross sum,
    /// <see cref="DriftAccumulator.Projects"/>), where they were solved, rather than G.
    /// </summary>
    public bool Projected => _steps is not null;

    /// <summary>
    /// G = α·H⁻¹·C for a group's finalized Hessian and its cross sum, or from a projected sum the members' steps
    /// α·H⁻¹·C·Wᵀ; null where the target is W itself: strength 0, a Hessian in fallback (no feedback, nothing to
    /// target), or no drift (the two streams agree, as in the first decoder layer). The solve runs on
    /// <paramref name="algebra"/>, where a GPU's reads the Hessian and the cross sum in its own memory (an 8B down_proj's
    /// 14336² system took minutes of host substitutions, then 4.5 s of copies and host loops around the device's solve).
    /// <paramref name="cross"/> is spent by it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The damped Hessian does not factor (LDLQ would retry with more damping; the target would not be H's).</exception>
    public static DriftCorrection? For(GroupHessian hessian, DriftAccumulator cross, double strength, IDenseAlgebra algebra)
    {
        if (strength == 0 || hessian.FallbackReason is not null || cross.Count == 0 || !cross.AnyDrift)
            return null;
        int k = cross.Features, padded = hessian.PaddedK;
        if (padded < k)
            throw new ArgumentException($"a Hessian of width {padded} cannot serve inputs of {k}");
        string failed = $"the damped Hessian ({k}×{k}) is not positive definite; no drift target";
        // The top-left k×k of the padded H: padded channels are zero inputs, uncoupled from the real ones.
        if (cross.Projection is { } projection)
        {
            var steps = cross.SolveProjected(algebra, hessian.Resident, () => hessian.Damped!, padded, strength) ?? throw new InvalidOperationException(failed);
            return new DriftCorrection(null, steps, projection, k);
        }
        var scaled = cross.Solve(algebra, hessian.Resident, () => hessian.Damped!, padded, strength) ?? throw new InvalidOperationException(failed);
        return new DriftCorrection(scaled, null, null, k);
    }

    /// <summary>
    /// T = W + W·Gᵀ (HF layout (out, in), so Tᵀ = Wᵀ + G·Wᵀ) of the group's member <paramref name="member"/>, a new
    /// array; the product on <paramref name="algebra"/>, or from a projected sum the member's step transposed.
    /// </summary>
    public float[] Target(int member, ReadOnlySpan<float> weight, int outFeatures, IDenseAlgebra algebra)
    {
        int k = Features;
        if (weight.Length != (long)outFeatures * k)
            throw new ArgumentException($"weight has {weight.Length} values, expected {outFeatures}×{k}");
        var target = new float[weight.Length];
        if (_steps is not null)
        {
            int offset = CheckMember(member, outFeatures);
            BlockTranspose.Into(_hostSteps!.Value.AsSpan(offset), k, outFeatures, _projection!.Columns, target, k);
        }
        else
        {
            algebra.MultiplyTransposed(weight, _g!, target, outFeatures, k);
        }
        TensorPrimitives.Add(target, weight, target);
        return target;
    }

    /// <summary>
    /// T (<see cref="Target"/>) transposed and zero-padded to (<paramref name="paddedK"/>, <paramref name="paddedN"/>) for
    /// <see cref="LinearQuantizer.QuantizeTransposed"/>, and <see cref="RelativeShift"/>: made where G is kept when
    /// <paramref name="algebra"/> can (<see cref="IDenseAlgebra.TryDriftTargetTransposed"/>, the same values), else on
    /// the host, where T's HF copy dies here. From a projected sum, on the host: W transposed, each row plus its step,
    /// whose layout is already the transposed one.
    /// </summary>
    /// <param name="onDevice">False makes T on the host whatever the algebra (the product W·Gᵀ still runs where G is).</param>
    public (float[] Transposed, double Shift) TransposedTarget(int member, ReadOnlySpan<float> weight, int outFeatures, int paddedK, int paddedN,
        IDenseAlgebra algebra, bool onDevice = true)
    {
        if (_steps is not null)
        {
            int offset = CheckMember(member, outFeatures);
            if (weight.Length != (long)outFeatures * Features)
                throw new ArgumentException($"weight has {weight.Length} values, expected {outFeatures}×{Features}");
            var transposed = LinearQuantizer.TransposePadded(weight, outFeatures, Features, paddedK, paddedN);
            var (moved, norm) = AddSteps(transposed, paddedN, _hostSteps!.Value, _projection!.Columns, offset, outFeatures, Features);
            return (transposed, norm == 0 ? 0 : Math.Sqrt(moved / norm));
        }
        if (onDevice && algebra.TryDriftTargetTransposed(weight, _g!, outFeatures, Features, paddedK, paddedN) is { } made)
            return (made.Transposed, made.NormSquared == 0 ? 0 : Math.Sqrt(made.MovedSquared / made.NormSquared));
        var target = Target(member, weight, outFeatures, algebra);
        return (LinearQuantizer.TransposePadded(target, outFeatures, Features, paddedK, paddedN), RelativeShift(weight, target));
    }

    /// <summary>
    /// <see cref="TransposedTarget"/> into <paramref name="held"/> (empty, <see cref="LinearTarget.Load"/>ed here): made
    /// where W is held when it can be (a GPU holding W makes T in its place, <see cref="LinearTarget.TryDriftTarget"/>,
    /// from steps kept on it <see cref="LinearTarget.TryProjectedDriftTarget"/>), else as <see cref="TransposedTarget"/>
    /// makes it (from steps brought down once for the group). Returns the relative shift.
    /// </summary>
    public double TargetInto(LinearTarget held, int member, ReadOnlySpan<float> weight, int outFeatures, IDenseAlgebra algebra, bool onDevice = true)
    {
        var made = !onDevice ? null
            : _steps is null ? held.TryDriftTarget(weight, _g!, outFeatures, Features)
            : held.TryProjectedDriftTarget(weight, _steps, CheckMember(member, outFeatures), outFeatures, Features);
        if (made is { } sums)
            return sums.NormSquared == 0 ? 0 : Math.Sqrt(sums.MovedSquared / sums.NormSquared);
        var (transposed, shift) = TransposedTarget(member, weight, outFeatures, held.K, held.N, algebra, onDevice);
        held.Load(transposed);
        return shift;
    }

    /// <summary>The first column of member <paramref name="member"/>'s steps, checked against its rows.</summary>
    private int CheckMember(int member, int outFeatures)
    {
        var projection = _projection!;
        if (member < 0 || member >= projection.Weights.Count || projection.RowsOf(member) != outFeatures)
            throw new ArgumentException($"member {member} of {outFeatures} rows is not one of the group's {projection.Weights.Count} projected ones", nameof(member));
        return projection.OffsetOf(member);
    }

    /// <summary>
    /// Adds a member's steps (k × <paramref name="columns"/> row-major, its block from <paramref name="offset"/>) to the
    /// transposed weight's rows in place, and returns Σ (T − W)² and Σ W² in double, the sums <see cref="RelativeShift"/>
    /// takes (the difference here in double, not float): per row in order, the rows' sums then added in order, so the
    /// value does not depend on the threads.
    /// </summary>
    public static (double Moved, double Norm) AddSteps(Span<float> transposed, int paddedN, ReadOnlySpan<float> steps, int columns, int offset, int rows, int k)
    {
        if (transposed.Length < (long)k * paddedN || paddedN < rows || steps.Length < (long)(k - 1) * columns + offset + rows)
            throw new ArgumentException($"a {k}×{rows} step block does not fit the target ({transposed.Length} values, rows of {paddedN}) or the steps ({steps.Length})");
        var sums = new (double Moved, double Norm)[k];
        unsafe
        {
            fixed (float* pt = transposed)
            fixed (float* ps = steps)
            {
                nint t = (nint)pt, s = (nint)ps;
                Parallel.For(0, k, i =>
                {
                    var row = new Span<float>((float*)t + (long)i * paddedN, rows);
                    var step = new ReadOnlySpan<float>((float*)s + (long)i * columns + offset, rows);
                    double moved = 0, norm = 0;
                    for (int j = 0; j < rows; j++)
                    {
                        float w = row[j], target = w + step[j];
                        double d = (double)target - w;
                        moved += d * d;
                        norm += (double)w * w;
                        row[j] = target;
                    }
                    sums[i] = (moved, norm);
                });
            }
        }
        double movedSum = 0, normSum = 0;
        foreach (var (m, n) in sums)
        {
            movedSum += m;
            normSum += n;
        }
        return (movedSum, normSum);
    }

    /// <summary>Frees G (on a GPU, k² floats) or the steps.</summary>
    public void Dispose()
    {
        _g?.Dispose();
        _steps?.Dispose();
    }

    /// <summary>
    /// ‖T − W‖ / ‖W‖, for the log: how far the drift moved a linear's target. Summed in spans of
    /// <see cref="ShiftSpan"/> values in parallel, the spans' sums then added in order, so the value does not depend on
    /// the threads. One thread sums ~1 ns a value (117M in 120 ms on the 2-core dev VM, 80 ms on both cores): ~0.5 s of
    /// an 8B head's 525M weights on its host path between quantizer launches.
    /// </summary>
    public static double RelativeShift(ReadOnlySpan<float> weight, ReadOnlySpan<float> target)
    {
        if (weight.Length != target.Length)
            throw new ArgumentException($"weight ({weight.Length}) and target ({target.Length}) differ in length");
        int spans = (int)((weight.Length + (long)ShiftSpan - 1) / ShiftSpan);
        var sums = new (double Difference, double Norm)[spans];
        unsafe
        {
            fixed (float* pw = weight)
            fixed (float* pt = target)
            {
                nint w = (nint)pw, t = (nint)pt;
                int length = weight.Length;
                Parallel.For(0, spans, s =>
                {
                    int start = s * ShiftSpan, count = Math.Min(ShiftSpan, length - start);
                    sums[s] = SpanSums(new ReadOnlySpan<float>((float*)w + start, count), new ReadOnlySpan<float>((float*)t + start, count));
                });
            }
        }
        double difference = 0, norm = 0;
        foreach (var (d, n) in sums)
        {
            difference += d;
            norm += n;
        }
        return norm == 0 ? 0 : Math.Sqrt(difference / norm);
    }

    /// <summary>Values summed by one task of <see cref="RelativeShift"/>.</summary>
    public const int ShiftSpan = 1 << 20;

    private static (double Difference, double Norm) SpanSums(ReadOnlySpan<float> weight, ReadOnlySpan<float> target)
    {
        double difference = 0, norm = 0;
        for (int i = 0; i < weight.Length; i++)
        {
            double d = target[i] - weight[i];
            difference += d * d;
            norm += (double)weight[i] * weight[i];
        }
        return (difference, norm);
    }
}
