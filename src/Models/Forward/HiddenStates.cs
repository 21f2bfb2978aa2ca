using Converter.Compute;

namespace Converter.Models.Forward;

/// <summary>
/// Rows of (tokens, width) states in host memory, one array per row: a conversion's calibration states on the host
/// (the whole passes what one array or span holds: a 70B at 250 rows × 2048 tokens is 4.2G values, 17 GB; a row does
/// not, 2048 × 8192 values, 67 MB), and a <see cref="StageStash"/>'s memory on the CPU.
/// </summary>
public sealed class HiddenStates : ResidentStates
{
    private readonly float[][] _rows;

    /// <summary>Zero-filled states: rows that are never written (dropped before this step) stay deterministic in a checkpoint.</summary>
    public HiddenStates(int rows, int tokens, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        Tokens = tokens;
        Width = width;
        int length = ArrayLength.Of(tokens, width, "calibration row");
        _rows = new float[rows][];
        // On the pinned-object heap, which the GC never compacts: in the large-object heap the rows (16 MB each for a
        // 70B at 512 tokens) shared regions with short-lived arrays, and a collection that compacted them moved 8.7 GB
        // in 2.2 s with every thread stopped, GPU launches too (a 70B layer in 20 GB, session 28's GC events).
        for (int r = 0; r < rows; r++)
            _rows[r] = GC.AllocateArray<float>(length, pinned: true);
    }

    public override int Rows => _rows.Length;

    public override int Tokens { get; }

    public override int Width { get; }

    public override string Device => "host";

    /// <summary>Row <paramref name="row"/>'s states, (tokens, width) row-major.</summary>
    public Span<float> Row(int row) => _rows[row];

    /// <summary>Row <paramref name="row"/>'s states as memory a device copy can pin (<see cref="IResidentForwardBackend.Runs"/>).</summary>
    public Memory<float> RowMemory(int row) => _rows[row];

    /// <summary>The rows in order, as the consecutive parts of one (rows·tokens, width) tensor.</summary>
    public IReadOnlyList<ReadOnlyMemory<float>> Parts => Array.ConvertAll(_rows, r => (ReadOnlyMemory<float>)r);

    /// <summary>Bytes of the states of <paramref name="rows"/> rows of (tokens, width) float32 values.</summary>
    public static long Bytes(long rows, long tokens, long width) => checked(rows * tokens * width * sizeof(float));

    public override void ReadRow(int row, Span<float> destination) => _rows[row].CopyTo(destination);

    public override void WriteRow(int row, ReadOnlySpan<float> source)
    {
        if (source.Length != _rows[row].Length)
            throw new ArgumentException($"a row holds {Tokens}·{Width} values, not {source.Length}", nameof(source));
        source.CopyTo(_rows[row]);
    }

    public override void Dispose()
    {
    }
}
