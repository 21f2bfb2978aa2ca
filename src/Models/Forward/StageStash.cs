namespace Converter.Models.Forward;

/// <summary>
/// Where a decoder block's staged forward stops for a later forward of the same rows to start again
/// (<see cref="StageStash"/>).
/// </summary>
public enum StashPoint
{
    /// <summary>The attention's attended values before o_proj: final once q/k/v (and a latent query) are quantized.</summary>
    Attended,

    /// <summary>The residual stream after the attention, before the MLP's norm: final once o_proj is quantized too.</summary>
    Residual,
}

/// <summary>
/// One stream's activations at a decoder block's <see cref="StashPoint"/>s, per calibration row, kept by a sequential
/// capture so that each later stage of the same rows starts there instead of at the block's input: the o_proj stage
/// keeps the attended values, the gate/up stage starts from them and keeps the residual, and the down_proj stage and
/// the forward after quantizing start from the residual. Without it every stage ran both streams from the block's
/// input: an 8B layer's four capture stages took 0.62, 1.46, 2.53 and 5.69 s at 250 × 2048 on an H100 (session 21).
/// A row holds one point at a time; the residual takes the attended values' memory when they are as wide (llama's
/// heads·headDim is its hidden width), and memory no row uses any more is released at once.
/// </summary>
/// <param name="hold">Zero-filled states of the stash's rows and tokens at a width: on the device beside the stream's states, or on the host.</param>
public sealed class StageStash(int rows, Func<int, ResidentStates> hold) : IDisposable
{
    private readonly StashPoint?[] _held = new StashPoint?[rows];
    private readonly Dictionary<StashPoint, int> _widths = [];
    private readonly Dictionary<int, ResidentStates> _byWidth = [];

    /// <summary>Whether every one of <paramref name="rows"/> holds <paramref name="point"/>.</summary>
    public bool Holds(StashPoint point, IReadOnlyList<int> rows) => rows.Count > 0 && rows.All(r => _held[r] == point);

    /// <summary>The states that hold <paramref name="point"/>'s rows.</summary>
    public ResidentStates StatesOf(StashPoint point) =>
        _widths.TryGetValue(point, out int width) && _byWidth.TryGetValue(width, out var states) ? states
            : throw new InvalidOperationException($"the stash holds no {point} values");

    /// <summary>The states <paramref name="point"/>'s rows of <paramref name="width"/> are written into, made at first use.</summary>
    public ResidentStates Prepare(StashPoint point, int width)
    {
        if (_widths.TryGetValue(point, out int known) && known != width)
            throw new InvalidOperationException($"{point} values are {known} wide, not {width}");
        _widths[point] = width;
        if (!_byWidth.TryGetValue(width, out var states))
            _byWidth[width] = states = hold(width);
        return states;
    }

    /// <summary>Records that <paramref name="rows"/> now hold <paramref name="point"/>, and releases the memory of a width no row holds any more.</summary>
    public void MarkHeld(StashPoint point, IReadOnlyList<int> rows)
    {
        foreach (int r in rows)
            _held[r] = point;
        var inUse = _held.OfType<StashPoint>().Distinct().Select(p => _widths[p]).ToHashSet();
        foreach (int width in _byWidth.Keys.Where(w => !inUse.Contains(w)).ToList())
        {
            _byWidth[width].Dispose();
            _byWidth.Remove(width);
        }
    }

    public void Dispose()
    {
        foreach (var states in _byWidth.Values)
            states.Dispose();
        _byWidth.Clear();
        Array.Clear(_held);
    }
}

/// <summary>
/// A forward of some rows with a <see cref="StageStash"/>: it starts from the latest point the rows hold, and keeps
/// the points that are final at <paramref name="Stage"/> (the <see cref="LinearGroup.Sublayer"/> whose groups the
/// forward captures; <see cref="Final"/> once every linear of the block is quantized).
/// </summary>
public sealed record StashRun(StageStash Stash, int Stage)
{
    /// <summary>The stage of the forward after a block is quantized.</summary>
    public const int Final = int.MaxValue;

    /// <summary>The rows of this forward, in the order they are stacked.</summary>
    public IReadOnlyList<int> Rows { get; init; } = [];

    /// <summary>This run for one chunk of rows.</summary>
    public StashRun For(IReadOnlyList<int> rows) => this with { Rows = rows };

    /// <summary>The first stage at which <paramref name="point"/> depends only on quantized linears.</summary>
    public static int FinalFrom(StashPoint point) => point switch
    {
        StashPoint.Attended => LinearGroup.SublayerOf(LinearSite.AttentionOutput),
        _ => LinearGroup.SublayerOf(LinearSite.MlpInput),
    };

    /// <summary>Whether the rows hold <paramref name="point"/> to start from.</summary>
    public bool Holds(StashPoint point) => Stash.Holds(point, Rows);

    /// <summary>The rows' <paramref name="point"/> values, stacked (rows·tokens, width).</summary>
    public Activations Load(IForwardPass pass, StashPoint point) => pass.Load(Stash.StatesOf(point), Rows);

    /// <summary>Keeps <paramref name="x"/> as the rows' <paramref name="point"/> values when it is final at this stage and not held yet.</summary>
    public void Keep(IForwardPass pass, StashPoint point, Activations x)
    {
        if (Stage < FinalFrom(point) || Holds(point))
            return;
        pass.Store(x, Stash.Prepare(point, x.Cols), Rows);
        Stash.MarkHeld(point, Rows);
    }
}
