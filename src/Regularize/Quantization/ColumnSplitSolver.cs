using Converter.Compute;
using Converter.Regularize.Hessian;
using Converter.Regularize.Ldl;
using Converter.Trellis.Viterbi;

namespace Converter.Regularize.Quantization;

/// <summary>One device's part in a column split: its LDLQ solver, its encoder for a K, what makes it current on a thread, and its speed.</summary>
/// <param name="EncoderFor">The device's encoder for K over the linear's codebook.</param>
/// <param name="Activate">Run first on any thread that drives the device (a CUDA context is per thread).</param>
public sealed record ColumnSplitDevice(ILdlqSolver Solver, Func<int, ITileEncoder> EncoderFor, Action Activate, double Speed);

/// <summary>
/// LDLQ of one linear over several devices: the home device forms the factor and runs its share of the output columns
/// with it where it lives; every other device runs its share (<see cref="ColumnSplit.Ranges"/>) from the host copy of
/// the factor on a thread of its own, and the states and Q come back into the whole weight's layout. The columns are
/// those one device gives (<see cref="ColumnSplit"/>; <see cref="ILdlqSolver.QuantizeColumns(float[], int, int, ColumnRange, float[], ITileEncoder)"/>),
/// so the output does not depend on the split.
/// </summary>
public sealed class ColumnSplitSolver : ILdlqSolver
{
    private readonly IReadOnlyList<ColumnSplitDevice> _devices;
    private readonly int _home;

    /// <param name="home">The device whose solver factors the Hessian and whose encoder the caller passes.</param>
    public ColumnSplitSolver(IReadOnlyList<ColumnSplitDevice> devices, int home)
    {
        if (devices.Count == 0 || home < 0 || home >= devices.Count)
            throw new ArgumentException($"a column split needs devices and a home among them, got {devices.Count} devices and home {home}");
        _devices = devices;
        _home = home;
    }

    private ILdlqSolver Home => _devices[_home].Solver;

    public string Device => $"{Home.Device} (columns over {string.Join(", ", _devices.Select(d => d.Solver.Device))})";

    public BlockLdlResult Factor(float[] hessian, int k, double sigma, IDenseAlgebra algebra) => Home.Factor(hessian, k, sigma, algebra);

    public BasisFactor FactorInBasis(GroupHessian hessian, ReadOnlySpan<float> inputScale, double sigma, IDenseAlgebra algebra, bool lastUse = false) =>
        Home.FactorInBasis(hessian, inputScale, sigma, algebra, lastUse);

    public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, float[]? factor, ITileEncoder encoder, float[]? quantizedInto = null)
    {
        var whole = wr.ToArray();
        return Split(k, n, encoder, quantizedInto, (solver, share, shareEncoder, _) => solver.QuantizeColumns(whole, k, n, share, factor, shareEncoder));
    }

    public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, BasisFactor? factor, ITileEncoder encoder, float[]? quantizedInto = null)
    {
        // The other devices read the factor from the host, copied here, on the home device's thread (a device factor
        // is downloaded in its context); the home device reads it where it is.
        float[]? host = factor?.FeedbackFactor();
        var whole = wr.ToArray();
        return Split(k, n, encoder, quantizedInto, (solver, share, shareEncoder, home) =>
            home ? solver.QuantizeColumns(whole, k, n, share, factor, shareEncoder) : solver.QuantizeColumns(whole, k, n, share, host, shareEncoder));
    }

    private delegate LdlqResult ShareQuantize(ILdlqSolver solver, ColumnRange share, ITileEncoder encoder, bool home);

    private LdlqResult Split(int k, int n, ITileEncoder encoder, float[]? quantizedInto, ShareQuantize quantize)
    {
        var ranges = ColumnSplit.Ranges(n, _devices.Select(d => d.Speed).ToList());
        var parts = Enumerable.Range(0, _devices.Count).Where(d => ranges[d].Count > 0).ToList();
        var results = new LdlqResult[_devices.Count];
        var others = parts.Where(d => d != _home).Select(d => Task.Run(() =>
        {
            _devices[d].Activate();
            results[d] = quantize(_devices[d].Solver, ranges[d], _devices[d].EncoderFor(encoder.Bits), home: false);
        })).ToArray();
        // Every share finishes (or fails) before this returns; the home share's failure is the one reported.
        Exception? failure = null;
        try
        {
            if (ranges[_home].Count > 0)
                results[_home] = quantize(Home, ranges[_home], encoder, home: true);
        }
        catch (Exception e)
        {
            failure = e;
        }
        try
        {
            Task.WaitAll(others);
        }
        catch (AggregateException e)
        {
            failure ??= e.InnerExceptions[0];
        }
        if (failure is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);

        var quantized = Ldlq.QuantizedArray(quantizedInto, (long)k * n);
        var states = new ushort[(long)k * n];
        foreach (int device in parts)
        {
            ColumnSplit.PutColumns(results[device].Quantized, k, n, ranges[device], quantized);
            ColumnSplit.PutTileStates(results[device].States, k, n, ranges[device], states);
        }
        return new LdlqResult(states, quantized);
    }
}
