using Converter.Compute;

namespace Converter.Models.Forward;

/// <summary>
/// The hidden states of many rows of equal length, (tokens, width) per row, kept by a forward backend where its
/// forward reads them (<see cref="IResidentForwardBackend"/>): on a GPU, a conversion's calibration states then
/// never cross to the host between modules. Rows move to and from the host one at a time (checkpoints, modules
/// that run on the host).
/// </summary>
public abstract class ResidentStates : IDisposable
{
    public abstract int Rows { get; }

    public abstract int Tokens { get; }

    public abstract int Width { get; }

    /// <summary>Where the states are, for logs (e.g. cuda:0).</summary>
    public abstract string Device { get; }

    /// <summary>Copies row <paramref name="row"/>'s (tokens, width) states into <paramref name="destination"/>.</summary>
    public abstract void ReadRow(int row, Span<float> destination);

    /// <summary>Replaces row <paramref name="row"/>'s states with <paramref name="source"/> (tokens·width values).</summary>
    public abstract void WriteRow(int row, ReadOnlySpan<float> source);

    /// <summary>Rows <paramref name="rows"/>, stacked in that order: (rows·tokens, width), a row at a time.</summary>
    public Matrix Gather(IReadOnlyList<int> rows)
    {
        var m = Matrix.Uninitialized(checked(rows.Count * Tokens), Width);
        for (int i = 0; i < rows.Count; i++)
            ReadRow(rows[i], m.RowRange(i * Tokens, Tokens));
        return m;
    }

    public abstract void Dispose();
}
