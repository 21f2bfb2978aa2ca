namespace Converter.Trellis.Tiles;

/// <summary>
/// Turns a stored <c>trellis</c> tensor (k/16, n/16, 16·K) back into the decoded matrix Ŵ (k, n): unpack each tile
/// (§2.6), look each state up in the codebook table (§1), and place position t at its tile element (§2.5).
/// </summary>
public static class TrellisDecoder
{
    /// <summary>Infers K from the packed tensor's last dimension (§4.1: K = shape[-1] / 16).</summary>
    public static int BitsFromWordsPerTile(int wordsPerTile)
    {
        if (wordsPerTile % 16 != 0 || wordsPerTile / 16 < TileLayout.MinBits || wordsPerTile / 16 > TileLayout.MaxBits)
            throw new FormatException($"trellis last dimension {wordsPerTile} is not 16·K for K in 1..8");
        return wordsPerTile / 16;
    }

    /// <summary>Decodes all tiles; <paramref name="what"/> is row-major (k, n) with k = 16·tilesK, n = 16·tilesN.</summary>
    public static void Decode(ReadOnlySpan<short> packed, int tilesK, int tilesN, int bits, ReadOnlySpan<float> table, Span<float> what)
    {
        int words = TrellisPacking.WordsPerTile(bits);
        int n = tilesN * TileLayout.Side;
        if (packed.Length != tilesK * tilesN * words || what.Length != tilesK * TileLayout.Side * n)
            throw new ArgumentException("packed or output size does not match the tile grid");
        Span<ushort> states = stackalloc ushort[TileLayout.Length];
        for (int tk = 0; tk < tilesK; tk++)
        {
            for (int tn = 0; tn < tilesN; tn++)
            {
                TrellisPacking.Unpack(packed.Slice((tk * tilesN + tn) * words, words), bits, states);
                for (int t = 0; t < TileLayout.Length; t++)
                {
                    int index = TileLayout.IndexOfPosition(t);
                    int r = index / TileLayout.Side, c = index % TileLayout.Side;
                    what[(tk * TileLayout.Side + r) * n + tn * TileLayout.Side + c] = table[states[t]];
                }
            }
        }
    }
}
