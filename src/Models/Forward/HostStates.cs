namespace Converter.Models.Forward;

/// <summary>
/// Rows of (tokens, width) states in host memory, one array per row: a <see cref="StageStash"/>'s memory on the CPU.
/// </summary>
public sealed class HostStates : ResidentStates
{
    private readonly float[][] _rows;

    public HostStates(int rows, int tokens, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        Tokens = tokens;
        Width = width;
        int length = checked(tokens * width);
        _rows = new float[rows][];
        for (int r = 0; r < rows; r++)
            _rows[r] = new float[length];
    }

    public override int Rows => _rows.Length;

    public override int Tokens { get; }

    public override int Width { get; }

    public override string Device => "host";

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
