namespace Converter.Trellis.Tiles;

/// <summary>
/// Bit packing of one tile's states into the stored int16 words and back (docs/exl3-format.md §2.6). The tile is a
/// 256·K-bit stream B of the K new bits of each state, MSB first; as little-endian uint32 words U[m] it reads
/// straight through, which is why the stored int16 pairs are half-swapped.
/// </summary>
public static class TrellisPacking
{
    /// <summary>Number of int16 words one tile occupies: 256·K bits / 16.</summary>
    public static int WordsPerTile(int bits) => TileLayout.Length * bits / 16;

    /// <summary>Packs 256 states (position order) into 16·K int16 words. Only the low K bits of each state are stored.</summary>
    public static void Pack(ReadOnlySpan<ushort> states, int bits, Span<short> packed)
    {
        TileLayout.CheckBits(bits);
        if (states.Length != TileLayout.Length || packed.Length != WordsPerTile(bits))
            throw new ArgumentException("a tile has 256 states and 16·K packed words");
        uint mask = (1u << bits) - 1;
        ulong acc = 0;
        int pending = 0, m = 0;
        for (int t = 0; t < TileLayout.Length; t++)
        {
            acc = (acc << bits) | (states[t] & mask);
            pending += bits;
            if (pending >= 32)
            {
                uint u = (uint)(acc >> (pending - 32));
                packed[2 * m] = (short)(ushort)u;
                packed[2 * m + 1] = (short)(ushort)(u >> 16);
                m++;
                pending -= 32;
            }
        }
    }

    /// <summary>
    /// Recovers the 256 full 16-bit states from a packed tile: state t is the 16 bits of B that end with v_t,
    /// read cyclically, so its top 16−K bits come from earlier positions (wrapping around the tile).
    /// </summary>
    public static void Unpack(ReadOnlySpan<short> packed, int bits, Span<ushort> states)
    {
        TileLayout.CheckBits(bits);
        int words = WordsPerTile(bits) / 2;
        if (packed.Length != 2 * words || states.Length != TileLayout.Length)
            throw new ArgumentException("a tile has 256 states and 16·K packed words");
        Span<uint> u = stackalloc uint[words];
        for (int m = 0; m < words; m++)
            u[m] = (ushort)packed[2 * m] | ((uint)(ushort)packed[2 * m + 1] << 16);
        int totalBits = TileLayout.Length * bits;
        for (int t = 0; t < TileLayout.Length; t++)
        {
            int start = ((t + 1) * bits - 16 + totalBits) % totalBits;
            int w = start >> 5;
            ulong pair = ((ulong)u[w] << 32) | u[(w + 1) % words];
            states[t] = (ushort)(pair >> (48 - (start & 31)));
        }
    }

    /// <summary>
    /// True when consecutive states overlap in 16−K bits, across the wrap too (§2.2): the condition for a state
    /// sequence to survive packing, since only K bits of each are stored.
    /// </summary>
    public static bool IsTailBiting(ReadOnlySpan<ushort> states, int bits)
    {
        uint overlap = (1u << (16 - bits)) - 1;
        for (int t = 0; t < states.Length; t++)
        {
            int prev = t == 0 ? states.Length - 1 : t - 1;
            if ((uint)(states[t] >> bits) != (states[prev] & overlap))
                return false;
        }
        return true;
    }
}
