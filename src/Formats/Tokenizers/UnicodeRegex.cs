using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// A regular expression from a tokenizer.json, matched the way the Hugging Face library (Oniguruma) matches it:
/// one character per Unicode code point. .NET's engine sees UTF-16 code units, so a character outside the
/// Basic Multilingual Plane (an emoji, a mathematical letter such as 𝐀) would be two surrogates belonging to no
/// letter or number class, and a pattern like Llama-3's <c>[^\r\n\p{L}\p{N}]?\p{L}+</c> would split
/// "🙂hello" differently. Such text is matched through a proxy string in which each of those characters is
/// replaced by one BMP character of the same general category; match positions are mapped back. Tokenizer
/// patterns only test categories (\p{L}, \s, …) and ASCII literals, which the proxy characters cannot be.
/// </summary>
internal sealed class UnicodeRegex
{
    private readonly Regex regex;

    public UnicodeRegex(string pattern)
    {
        Pattern = pattern;
        regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    public string Pattern { get; }

    /// <summary>Appends the non-overlapping matches in <paramref name="text"/>, left to right, as UTF-16 ranges.</summary>
    public void FindMatches(string text, List<(int Start, int End)> matches)
    {
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            foreach (var m in regex.EnumerateMatches(text))
                matches.Add((m.Index, m.Index + m.Length));
            return;
        }

        var proxy = new char[text.Length];
        var proxyToText = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; n++)
        {
            proxyToText[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                proxy[n] = Representative[(int)CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))];
                i += 2;
            }
            else
            {
                proxy[n] = text[i];
                i++;
            }
        }
        proxyToText[n] = text.Length;
        foreach (var m in regex.EnumerateMatches(proxy.AsSpan(0, n)))
            matches.Add((proxyToText[m.Index], proxyToText[m.Index + m.Length]));
    }

    /// <summary><paramref name="text"/> with every match replaced by <paramref name="replacement"/> (taken literally).</summary>
    public string Replace(string text, string replacement)
    {
        var matches = new List<(int Start, int End)>();
        FindMatches(text, matches);
        if (matches.Count == 0)
            return text;
        var sb = new StringBuilder(text.Length);
        int last = 0;
        foreach (var (start, end) in matches)
        {
            sb.Append(text, last, start - last).Append(replacement);
            last = end;
        }
        return sb.Append(text, last, text.Length - last).ToString();
    }

    /// <summary>
    /// For each general category, a BMP character of that category at or above U+A000, away from ASCII and
    /// Latin so that no pattern literal or case folding can coincide with it (CJK ranges such as
    /// [\u4e00-\u9fff] stay clear too); categories found only lower take their first BMP character.
    /// </summary>
    private static readonly char[] Representative = BuildRepresentatives();

    private static char[] BuildRepresentatives()
    {
        var reps = new char[32];
        for (int pass = 0; pass < 2; pass++)
        {
            int from = pass == 0 ? 0xA000 : 0x80, to = pass == 0 ? 0xFFFF : 0x9FFF;
            for (int c = from; c <= to; c++)
            {
                if (c is >= 0xD800 and <= 0xDFFF)
                    continue;
                int cat = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
                if (reps[cat] == '\0')
                    reps[cat] = (char)c;
            }
        }
        return reps;
    }
}
