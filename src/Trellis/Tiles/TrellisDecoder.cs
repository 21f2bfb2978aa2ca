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
    public static unsafe void Decode(ReadOnlySpan<short> packed, int tilesK, int tilesN, int bits, ReadOnlySpan<float> table, Span<float> what)
    {
        int words = TrellisPacking.WordsPerTile(bits);
        int n = tilesN * TileLayout.Side;
        if (packed.Length != tilesK * tilesN * words || what.Length != tilesK * TileLayout.Side * n)
            throw new ArgumentException("packed or output size does not match the tile grid");
        fixed (short* pp = packed)
        fixed (float* pt = table, pw = what)
        {
            var (p, t, w) = ((nint)pp, (nint)pt, (nint)pw);
            int tableLength = table.Length;
            // Tile rows write disjoint row ranges of Ŵ.
            Parallel.For(0, tilesK, tk =>
            {
                Span<ushort> states = stackalloc ushort[TileLayout.Length];
                var source = new ReadOnlySpan<short>((short*)p, tilesK * tilesN * words);
                var values = new ReadOnlySpan<float>((float*)t, tableLength);
                float* output = (float*)w;
                for (int tn = 0; tn < tilesN; tn++)
                {
                    TrellisPacking.Unpack(source.Slice((tk * tilesN + tn) * words, words), bits, states);
                    for (int pos = 0; pos < TileLayout.Length; pos++)
                    {
                        int index = TileLayout.IndexOfPosition(pos);
                        int r = index / TileLayout.Side, c = index % TileLayout.Side;
                        output[(long)(tk * TileLayout.Side + r) * n + tn * TileLayout.Side + c] = values[states[pos]];
                    }
                }
            });
        }
    }
}
