using Converter.Compute;

namespace Converter.Models.Forward;

/// <summary>
/// A forward backend that can keep rows' hidden states where it computes (<see cref="ResidentStates"/>) and run a
/// module on some of them without a round trip through host memory: the rows are gathered on the device, and the
/// output goes back over them or, for the few rows a caller keeps, to the host.
/// </summary>
public interface IResidentForwardBackend : IForwardBackend
{
    /// <summary>The device, for logs (e.g. cuda:0).</summary>
    string Device { get; }

    /// <summary>Zero-filled states of <paramref name="rows"/> rows of (<paramref name="tokens"/>, <paramref name="width"/>) on this backend's device.</summary>
    ResidentStates HoldStates(int rows, int tokens, int width);

    /// <summary>Whether <paramref name="states"/> were made by this backend (<see cref="HoldStates"/>).</summary>
    bool Holds(ResidentStates states);

    /// <summary>
    /// Whether <see cref="Run"/> takes <paramref name="states"/>: its own, or host states (<see cref="HiddenStates"/>)
    /// whose rows it copies to the device and, writing back, from it, straight from and into their arrays.
    /// </summary>
    bool Runs(ResidentStates states);

    /// <summary>
    /// Runs <paramref name="body"/> on <paramref name="rows"/> of <paramref name="states"/> stacked in that order
    /// (rows·tokens, width). With <see cref="ResidentRun.WriteBack"/> each row's output replaces its input in the
    /// states (it must be as wide), and the result says which rows' outputs hold a NaN or infinity; the first
    /// <see cref="ResidentRun.KeepRows"/> rows' outputs come back as a host matrix.
    /// </summary>
    ResidentOutput Run(ResidentStates states, IReadOnlyList<int> rows, ResidentRun run, Func<IForwardPass, Activations, Activations> body);
}

/// <summary>
/// What a resident run does with its output: write it back over the inputs, and keep how many rows' on the host; and
/// the stash a decoder block's staged forward starts from and keeps its points in (its rows are the run's).
/// </summary>
/// <param name="KeptInto">
/// A host matrix of exactly the kept rows' shape to write them into (a caller that consumes them at once reuses one:
/// a fresh matrix first-touches its pages), or null for a fresh one.
/// </param>
public sealed record ResidentRun(bool WriteBack, int KeepRows, StashRun? Stash = null, Matrix? KeptInto = null);

/// <summary>
/// A resident run's result: the kept rows' outputs ((kept·tokens, width) on the host; 0×0 when none were kept) and,
/// when it wrote back, the positions (in the run's row list) of rows whose outputs are not all finite.
/// </summary>
public sealed record ResidentOutput(Matrix Kept, IReadOnlyList<int> NonFinite);
