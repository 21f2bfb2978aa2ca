using System.Text;

namespace Converter.Formats.Tokenizers;

/// <summary>What a split does with the delimiters it finds (tokenizer.json "behavior").</summary>
internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

/// <summary>Cuts one text piece at delimiters found by a regex or a character predicate.</summary>
internal static class PieceSplitter
{
    /// <summary>
    /// Splits <paramref name="piece"/> at the delimiter ranges <paramref name="matches"/> (ordered, disjoint) and
    /// appends the non-empty parts to <paramref name="output"/>. With <paramref name="invert"/> the ranges are the
    /// kept text and everything between them is the delimiter.
    /// </summary>
    public static void Split(TextPiece piece, List<(int Start, int End)> matches, SplitBehavior behavior, bool invert, List<TextPiece> output)
    {
        var text = piece.Text;
        // The text covered by alternating segments, each flagged as delimiter or not.
        var segments = new List<(int Start, int End, bool IsDelimiter)>(matches.Count * 2 + 1);
        int last = 0;
        foreach (var (start, end) in matches)
        {
            if (start > last)
                segments.Add((last, start, invert));
            segments.Add((start, end, !invert));
            last = end;
        }
        if (last < text.Length)
            segments.Add((last, text.Length, invert));

        // Merge or drop delimiters per behavior into the list of (start, end) parts to keep.
        var parts = new List<(int Start, int End)>(segments.Count);
        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var s in segments)
                {
                    if (!s.IsDelimiter)
                        parts.Add((s.Start, s.End));
                }
                break;
            case SplitBehavior.Isolated:
                foreach (var s in segments)
                    parts.Add((s.Start, s.End));
                break;
            case SplitBehavior.Contiguous:
                for (int i = 0; i < segments.Count; i++)
                {
                    // Runs of adjacent delimiters (matches that touch, e.g. one per digit) become one part.
                    if (i > 0 && segments[i].IsDelimiter == segments[i - 1].IsDelimiter)
                        parts[^1] = (parts[^1].Start, segments[i].End);
                    else
                        parts.Add((segments[i].Start, segments[i].End));
                }
                break;
            case SplitBehavior.MergedWithPrevious:
                for (int i = 0; i < segments.Count; i++)
                {
                    if (segments[i].IsDelimiter && i > 0 && !segments[i - 1].IsDelimiter)
                        parts[^1] = (parts[^1].Start, segments[i].End);
                    else
                        parts.Add((segments[i].Start, segments[i].End));
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (int i = segments.Count - 1; i >= 0; i--)
                {
                    if (segments[i].IsDelimiter && i < segments.Count - 1 && !segments[i + 1].IsDelimiter)
                        parts[^1] = (segments[i].Start, parts[^1].End);
                    else
                        parts.Add((segments[i].Start, segments[i].End));
                }
                parts.Reverse();
                break;
        }

        foreach (var (start, end) in parts)
        {
            if (end > start)
                output.Add(TextPiece.FromText(text[start..end], piece.AtInputStart && start == 0));
        }
    }

    /// <summary>The ranges of <paramref name="text"/>'s code points that satisfy <paramref name="isDelimiter"/>, one range each.</summary>
    public static void FindCharacters(string text, Func<Rune, bool> isDelimiter, List<(int Start, int End)> matches)
    {
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int length);
            if (isDelimiter(rune))
                matches.Add((i, i + length));
            i += length;
        }
    }
}
