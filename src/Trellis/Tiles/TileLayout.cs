namespace Converter.Trellis.Tiles;

/// <summary>
/// Geometry of one trellis tile: 16×16 weights of W (k, n), coded as one tail-biting sequence of T = 256 states
/// (docs/exl3-format.md §2.1), and the tensor-core order of its elements (§2.5).
/// </summary>
public static class TileLayout
{
    public const int Side = 16;
    public const int Length = Side * Side;

    /// <summary>State size L in bits (§2.1).</summary>
    public const int StateBits = 16;

    public const int MinBits = 1;
    public const int MaxBits = 8;

    private static readonly byte[] PositionToIndex = BuildPositionToIndex();
    private static readonly byte[] IndexToPosition = Invert(PositionToIndex);

    /// <summary>Row-major tile index r·16 + c of trellis position t (§2.5, exllamav3's tensor_core_perm).</summary>
    public static int IndexOfPosition(int t) => PositionToIndex[t];

    /// <summary>Trellis position of row-major tile index r·16 + c.</summary>
    public static int PositionOfIndex(int index) => IndexToPosition[index];

    /// <summary>Gathers a tile, given row-major, into trellis-position order: <c>positions[t] = rowMajor[perm[t]]</c>.</summary>
    public static void ToPositionOrder(ReadOnlySpan<float> rowMajor, Span<float> positions)
    {
        for (int t = 0; t < Length; t++)
            positions[t] = rowMajor[PositionToIndex[t]];
    }

    /// <summary>Scatters trellis-position-order values back to row-major order.</summary>
    public static void ToRowMajor(ReadOnlySpan<float> positions, Span<float> rowMajor)
    {
        for (int t = 0; t < Length; t++)
            rowMajor[PositionToIndex[t]] = positions[t];
    }

    public static void CheckBits(int bits)
    {
        if (bits < MinBits || bits > MaxBits)
            throw new ArgumentOutOfRangeException(nameof(bits), bits, $"bits per weight K must be {MinBits}..{MaxBits} (docs/exl3-format.md §2.1)");
    }

    private static byte[] BuildPositionToIndex()
    {
        ReadOnlySpan<int> rowOffsets = [0, 1, 8, 9];
        var map = new byte[Length];
        for (int t = 0; t < Length; t++)
        {
            int lane = t / 8, j = t % 8;
            int r = (lane % 4) * 2 + rowOffsets[j % 4];
            int c = lane / 4 + 8 * (j / 4);
            map[t] = (byte)(r * Side + c);
        }
        return map;
    }

    private static byte[] Invert(byte[] map)
    {
        var inverse = new byte[map.Length];
        for (int t = 0; t < map.Length; t++)
            inverse[map[t]] = (byte)t;
        return inverse;
    }
}
