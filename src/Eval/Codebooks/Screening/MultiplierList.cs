using Converter.Trellis.Codebooks;

namespace Converter.Eval.Codebooks.Screening;

/// <summary>The candidates of a screen: a list file (one multiplier a line) or random odd 32-bit multipliers.</summary>
public static class MultiplierList
{
    /// <summary>
    /// Reads <paramref name="path"/>: one multiplier per line, hex <c>0x…</c> or decimal; blank lines and everything
    /// after <c>#</c> are ignored; duplicates are kept once (first occurrence). A bad line throws
    /// <see cref="InvalidDataException"/> naming the file and line; so does a file with no multiplier.
    /// </summary>
    public static IReadOnlyList<uint> Read(string path, CodebookKind kind)
    {
        var multipliers = new List<uint>();
        var seen = new HashSet<uint>();
        int lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            int hash = raw.IndexOf('#', StringComparison.Ordinal);
            var text = (hash >= 0 ? raw[..hash] : raw).Trim();
            if (text.Length == 0)
                continue;
            uint multiplier;
            try
            {
                multiplier = CodebookSpec.ParseMultiplier(text);
                new CodebookSpec(kind, multiplier).Validate();
            }
            catch (FormatException e)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: {e.Message}");
            }
            if (seen.Add(multiplier))
                multipliers.Add(multiplier);
        }
        if (multipliers.Count == 0)
            throw new InvalidDataException($"{path}: no multiplier in the file (one per line, hex 0x… or decimal, # comments)");
        return multipliers;
    }

    /// <summary>
    /// <paramref name="count"/> distinct random odd 32-bit multipliers from <c>System.Random(seed)</c> (stable across
    /// .NET versions, so a seed names the same list everywhere). Odd for every family: MCG needs it, and for MUL1 it
    /// keeps the product a bijection of the state's low bits.
    /// </summary>
    public static IReadOnlyList<uint> Random(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new Random(seed);
        var multipliers = new List<uint>(count);
        var seen = new HashSet<uint>();
        Span<byte> bytes = stackalloc byte[4];
        while (multipliers.Count < count)
        {
            rng.NextBytes(bytes);
            uint m = BitConverter.ToUInt32(bytes) | 1;
            if (seen.Add(m))
                multipliers.Add(m);
        }
        return multipliers;
    }
}
