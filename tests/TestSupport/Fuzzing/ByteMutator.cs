namespace Converter.TestSupport.Fuzzing;

/// <summary>
/// Seeded mutations of raw bytes within a range of a file (a header, a data section): bit flips, bytes set to
/// boundary values, a range deleted, duplicated or zeroed, the file cut or extended. Each says what it did.
/// </summary>
public static class ByteMutator
{
    private static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0xFF, (byte)'"', (byte)'{', (byte)'}', (byte)'-', (byte)'9'];

    /// <summary>One mutation of <paramref name="bytes"/> at a position in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public static (byte[] Bytes, string What) Mutate(byte[] bytes, int from, int to, Random random)
    {
        if (to <= from)
            return (bytes, "no bytes to mutate");
        int at = random.Next(from, to);
        var result = (byte[])bytes.Clone();
        switch (random.Next(8))
        {
            case 0:
                {
                    int bit = random.Next(8);
                    result[at] ^= (byte)(1 << bit);
                    return (result, $"flip bit {bit} of byte {at}");
                }
            case 1:
                {
                    var value = Interesting[random.Next(Interesting.Length)];
                    result[at] = value;
                    return (result, $"byte {at} = 0x{value:X2}");
                }
            case 2:
                {
                    int length = Math.Min(to - at, 1 + random.Next(16));
                    return ([.. bytes.AsSpan(0, at), .. bytes.AsSpan(at + length)], $"delete bytes [{at}, {at + length})");
                }
            case 3:
                {
                    int length = Math.Min(to - at, 1 + random.Next(16));
                    return ([.. bytes.AsSpan(0, at + length), .. bytes.AsSpan(at, length), .. bytes.AsSpan(at + length)], $"duplicate bytes [{at}, {at + length})");
                }
            case 4:
                {
                    int length = Math.Min(to - at, 1 + random.Next(64));
                    Array.Clear(result, at, length);
                    return (result, $"zero bytes [{at}, {at + length})");
                }
            case 5:
                return (bytes[..at], $"truncate to {at} bytes");
            case 6:
                {
                    int extra = 1 + random.Next(64);
                    var tail = new byte[extra];
                    random.NextBytes(tail);
                    return ([.. bytes, .. tail], $"append {extra} random bytes");
                }
            default:
                {
                    int length = Math.Min(to - at, 1 + random.Next(8));
                    random.NextBytes(result.AsSpan(at, length));
                    return (result, $"randomize bytes [{at}, {at + length})");
                }
        }
    }
}
