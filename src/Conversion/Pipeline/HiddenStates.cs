using Converter.Compute;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The hidden states of every calibration row, (tokens, width) per row, held one array per row: the whole passes what
/// one array or span holds (a 70B at 250 rows × 2048 tokens is 4.2G values, 17 GB), a row does not (2048 × 8192
/// values, 67 MB).
/// </summary>
public sealed class HiddenStates
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
        for (int r = 0; r < rows; r++)
            _rows[r] = new float[length];
    }

    public int Rows => _rows.Length;

    public int Tokens { get; }

    public int Width { get; }

    /// <summary>Row <paramref name="row"/>'s states, (tokens, width) row-major.</summary>
    public Span<float> Row(int row) => _rows[row];

    /// <summary>The rows in order, as the consecutive parts of one (rows·tokens, width) tensor.</summary>
    public IReadOnlyList<ReadOnlyMemory<float>> Parts => Array.ConvertAll(_rows, r => (ReadOnlyMemory<float>)r);

    /// <summary>Bytes of the states of <paramref name="rows"/> rows of (tokens, width) float32 values.</summary>
    public static long Bytes(long rows, long tokens, long width) => checked(rows * tokens * width * sizeof(float));
}
