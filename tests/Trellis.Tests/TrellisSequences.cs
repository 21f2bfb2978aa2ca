using Converter.Trellis.Tiles;

namespace Converter.Trellis.Tests;

/// <summary>Random valid tail-biting state sequences: a random cyclic bitstream of T·K bits read as in §2.6.</summary>
internal static class TrellisSequences
{
    public static ushort[] RandomTailBiting(int bits, Random rng, int length = TileLayout.Length)
    {
        int totalBits = length * bits;
        var stream = new bool[totalBits];
        for (int i = 0; i < totalBits; i++)
            stream[i] = rng.Next(2) == 1;
        return FromCyclicStream(stream, bits, length);
    }

    /// <summary>State t = the 16 bits of the cyclic stream ending with v_t (bit (t+1)·K − 1), MSB first.</summary>
    public static ushort[] FromCyclicStream(bool[] stream, int bits, int length)
    {
        var states = new ushort[length];
        int total = stream.Length;
        for (int t = 0; t < length; t++)
        {
            int end = (t + 1) * bits;
            int s = 0;
            for (int b = end - 16; b < end; b++)
                s = (s << 1) | (stream[((b % total) + total) % total] ? 1 : 0);
            states[t] = (ushort)s;
        }
        return states;
    }
}
