using Converter.Compute;
using Converter.Regularize.Hessian;

namespace Converter.Models;

/// <summary>
/// The capture of the drift-aware target (<see cref="Regularize.Quantization.DriftCorrection"/>): each group's Hessian
/// from the quantized stream, as <see cref="HessianCapture"/>, plus its cross sum X̃ᵀ(X − X̃) against the original
/// model's stream at the same tokens. A chunk of rows runs first through the original stream with
/// <see cref="Original"/> as its observer, which keeps every group's input (a device copy where a GPU computed it, else
/// a host copy); then through the quantized stream with this capture, which pairs each group's input with it. On a GPU
/// both sums are then made where the rows are (<see cref="IDriftObserver"/>); otherwise the backend hands host copies.
/// </summary>
public sealed class DriftCapture : IDriftObserver, IDisposable
{
    private readonly HessianCapture _hessians;
    private readonly IDenseAlgebra _algebra;
    private readonly Dictionary<LinearGroup, DriftAccumulator> _cross = new();
    private readonly Dictionary<LinearGroup, Matrix> _pending = new();
    private readonly Dictionary<LinearGroup, IResidentRows> _pendingResident = new();

    /// <param name="hessians">Where the quantized stream's Hessian sums go (the capture the module's quantizer reads).</param>
    /// <param name="algebra">Where the cross products are computed.</param>
    public DriftCapture(HessianCapture hessians, IDenseAlgebra algebra)
    {
        _hessians = hessians;
        _algebra = algebra;
        Original = new OriginalInputs(this);
    }

    /// <summary>The observer of the original stream's forward: keeps each group's input until the quantized stream's arrives.</summary>
    public ILinearInputObserver Original { get; }

    /// <summary>The cross sum of <paramref name="group"/> (an empty one if the group saw no rows).</summary>
    public DriftAccumulator For(LinearGroup group) =>
        _cross.TryGetValue(group, out var a) ? a : new DriftAccumulator(group.InFeatures);

    public DriftAccumulator CrossFor(LinearGroup group)
    {
        if (!_cross.TryGetValue(group, out var cross))
            _cross[group] = cross = new DriftAccumulator(group.InFeatures, _algebra, ProjectionOf(group));
        return cross;
    }

    /// <summary>
    /// The group's weights as they are now (the originals: a capture runs before its groups quantize), where its cross
    /// sum is projected by them (<see cref="DriftAccumulator.Projects"/>); else null.
    /// </summary>
    public static CrossProjection? ProjectionOf(LinearGroup group) =>
        DriftAccumulator.Projects(group.InFeatures, group.OutFeatures) ? new CrossProjection(group.Linears.Select(l => l.Weight.Data).ToList(), group.InFeatures) : null;

    public bool Observes(LinearGroup group) => _hessians.Observes(group);

    public HessianAccumulator AccumulatorFor(LinearGroup group) => _hessians.AccumulatorFor(group);

    public IResidentRows? TakeResidentOriginal(LinearGroup group) => _pendingResident.Remove(group, out var rows) ? rows : null;

    public void OnLinearInput(LinearGroup group, Matrix input)
    {
        if (!Observes(group))
            return;
        _hessians.OnLinearInput(group, input);
        Matrix? original = null;
        if (_pendingResident.Remove(group, out var resident))
        {
            // The original's rows stayed on the device but these came to the host (a non-finite row): pair them here.
            using (resident)
                original = new Matrix(resident.Rows, resident.Cols, resident.ToHost());
        }
        else if (!_pending.Remove(group, out original))
        {
            throw new InvalidOperationException($"{group}: the quantized stream reached it before the original stream's same rows (drift target)");
        }
        if (original.Rows != input.Rows || original.Cols != input.Cols)
            throw new InvalidOperationException($"{group}: the original stream's input is {original.ShapeText}, the quantized stream's {input.ShapeText}; the drift target pairs them token by token");
        CrossFor(group).Add(input.Data.AsSpan(0, input.Rows * input.Cols), original.Data.AsSpan(0, original.Rows * original.Cols), input.Rows);
    }

    /// <summary>Frees the cross sums (on a GPU, k×k float64 each) and any original rows still held.</summary>
    public void Dispose()
    {
        foreach (var cross in _cross.Values)
            cross.Dispose();
        _cross.Clear();
        foreach (var rows in _pendingResident.Values)
            rows.Dispose();
        _pendingResident.Clear();
    }

    /// <summary>The original stream's side: a copy of each input (the forward's own matrix is reused after the call).</summary>
    private sealed class OriginalInputs(DriftCapture capture) : IOriginalInputHolder
    {
        public bool Observes(LinearGroup group) => capture.Observes(group);

        public void OnLinearInput(LinearGroup group, Matrix input)
        {
            if (!Observes(group))
                return;
            if (capture._pendingResident.ContainsKey(group) || !capture._pending.TryAdd(group, input.Clone()))
                throw new InvalidOperationException($"{group}: the original stream's input came twice before the quantized stream's (drift target)");
        }

        public void Hold(LinearGroup group, IResidentRows input)
        {
            if (capture._pending.ContainsKey(group) || !capture._pendingResident.TryAdd(group, input))
            {
                input.Dispose();
                throw new InvalidOperationException($"{group}: the original stream's input came twice before the quantized stream's (drift target)");
            }
        }
    }
}
