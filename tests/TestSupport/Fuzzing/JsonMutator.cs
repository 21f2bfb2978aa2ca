using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Converter.TestSupport.Fuzzing;

/// <summary>
/// Seeded mutations of a JSON document at the level of its tokens: most keep the document valid JSON and change
/// what a reader sees (a value of another type, a huge or negative number, a duplicated member, a string from
/// elsewhere in the file, deep nesting), the rest break it (a deleted or stray token, truncation, bytes that are not
/// UTF-8). Each mutation says what it did, so a failing case can be reproduced and reported.
/// </summary>
public static class JsonMutator
{
    private enum Kind { String, Number, Literal, Punctuation }

    private readonly record struct Token(Kind Kind, int Start, int End);

    /// <summary>Values that probe types, limits and parsing: out of range for int/long/double, negative, fractional, empty.</summary>
    private static readonly string[] Replacements =
    [
        "null", "true", "false", "0", "-1", "1", "2", "-0", "1.5", "-2.5", "1e400", "-1e400", "1e-400",
        "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "18446744073709551616", "1000000000000", "100000000000000000000000000000",
        "\"\"", "\"x\"", "\"F32\"", "\"BF16\"", "\"f32\"", "\"F64\"", "\"F8_E4M3\"", "\"\\u0000\"", "\"\\ud800\"",
        "\"a\\nb\"", "\"..\"", "\"/etc/passwd\"", "\"../model.safetensors\"", "[]", "{}", "[1]", "[-1]", "[0,0]",
        "[1000000000000,1000000000000]", "{\"a\":1}", "[null]", "\"" + new string('a', 5000) + "\"",
    ];

    /// <summary>
    /// One to three mutations of <paramref name="json"/> (UTF-8), chosen by <paramref name="random"/>; the description
    /// lists them.
    /// </summary>
    public static (byte[] Bytes, string Description) Mutate(byte[] json, Random random)
    {
        var text = Encoding.UTF8.GetString(json);
        var steps = new List<string>();
        byte[]? raw = null;
        int count = 1 + random.Next(3);
        for (int i = 0; i < count; i++)
        {
            var tokens = Lex(text);
            if (tokens.Count == 0)
                break;
            int pick = random.Next(100);
            if (pick < 30 && ReplaceLeaf(text, random) is { } leaf)
            {
                text = leaf.Text;
                steps.Add(leaf.What);
            }
            else if (pick < 90)
            {
                var (next, what) = MutateText(text, tokens, random);
                text = next;
                steps.Add(what);
            }
            else
            {
                // Invalid UTF-8 can only be expressed in bytes; it ends the chain.
                (raw, var what) = InjectInvalidUtf8(text, tokens, random);
                steps.Add(what);
                break;
            }
        }
        return (raw ?? Encoding.UTF8.GetBytes(text), string.Join("; ", steps));
    }

    private static (string Text, string What) MutateText(string text, List<Token> tokens, Random random)
    {
        var values = tokens.Where(t => t.Kind != Kind.Punctuation).ToList();
        var strings = tokens.Where(t => t.Kind == Kind.String).ToList();
        var numbers = tokens.Where(t => t.Kind == Kind.Number).ToList();
        int choice = random.Next(100);
        switch (choice)
        {
            case < 30 when values.Count > 0:
                {
                    var t = values[random.Next(values.Count)];
                    var with = Replacements[random.Next(Replacements.Length)];
                    return (Splice(text, t, with), $"replace {Show(text, t)} at {t.Start} with {Clip(with)}");
                }
            case < 45 when numbers.Count > 0:
                {
                    var t = numbers[random.Next(numbers.Count)];
                    var with = TweakNumber(text[t.Start..t.End], random);
                    return (Splice(text, t, with), $"number {Show(text, t)} at {t.Start} becomes {with}");
                }
            case < 55 when strings.Count > 1:
                {
                    // A string from elsewhere: another key, dtype or file name, still well-formed.
                    var t = strings[random.Next(strings.Count)];
                    var from = strings[random.Next(strings.Count)];
                    return (Splice(text, t, text[from.Start..from.End]), $"string {Show(text, t)} at {t.Start} becomes {Show(text, from)}");
                }
            case < 62 when strings.Count > 0:
                {
                    var t = strings[random.Next(strings.Count)];
                    // An unterminated string at the end of a cut text is one character long.
                    var inner = t.End - t.Start >= 2 ? text[(t.Start + 1)..(t.End - 1)] : "";
                    var changed = inner.Length == 0 ? "x" : inner.Remove(random.Next(inner.Length), 1);
                    if (random.Next(2) == 0)
                        changed = inner + inner;
                    return (Splice(text, t, "\"" + changed + "\""), $"string {Show(text, t)} at {t.Start} becomes \"{Clip(changed)}\"");
                }
            case < 70 when values.Count > 0:
                {
                    var t = values[random.Next(values.Count)];
                    int depth = random.Next(2) == 0 ? 20 : 5000;
                    var nested = random.Next(2) == 0
                        ? new string('[', depth) + new string(']', depth)
                        : string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);
                    return (Splice(text, t, nested), $"value {Show(text, t)} at {t.Start} nested {depth} deep");
                }
            case < 78:
                {
                    var t = tokens[random.Next(tokens.Count)];
                    return (Splice(text, t, ""), $"delete {Show(text, t)} at {t.Start}");
                }
            case < 86:
                {
                    // Duplicating a string inside an object duplicates a key or a value; with its following ':'/',' it repeats a member.
                    int i = random.Next(tokens.Count);
                    int j = Math.Min(tokens.Count - 1, i + random.Next(4));
                    var span = text[tokens[i].Start..tokens[j].End];
                    return (text.Insert(tokens[j].End, span), $"duplicate {Clip(span)} at {tokens[i].Start}");
                }
            case < 90:
                {
                    var t = tokens[random.Next(tokens.Count)];
                    var stray = "{}[]:,\""[random.Next(7)].ToString();
                    return (text.Insert(t.Start, stray), $"insert '{stray}' at {t.Start}");
                }
            case < 95 when values.Count > 1:
                {
                    var a = values[random.Next(values.Count)];
                    var b = values[random.Next(values.Count)];
                    if (a.Start > b.Start)
                        (a, b) = (b, a);
                    if (a.Start == b.Start)
                        return (text, "swap a value with itself");
                    var swapped = text[..a.Start] + text[b.Start..b.End] + text[a.End..b.Start] + text[a.Start..a.End] + text[b.End..];
                    return (swapped, $"swap {Show(text, a)} at {a.Start} and {Show(text, b)} at {b.Start}");
                }
            default:
                {
                    int at = random.Next(text.Length + 1);
                    return (text[..at], $"truncate to {at} chars");
                }
        }
    }

    /// <summary>Numbers that break int, long or double, or a positive, even or non-zero promise, or are valid but huge (2^30).</summary>
    private static readonly string[] Numbers =
        ["0", "-1", "1", "3", "-0", "0.5", "1.5", "1e400", "-1e400", "65536", "1073741824", "2147483647", "2147483648", "-2147483648",
            "9223372036854775808", "1000000000000"];

    /// <summary>
    /// A member value or array element of the parsed document replaced, the document otherwise intact: a number by
    /// an extreme one, anything by another type. Null when the text is not JSON (an earlier step broke it).
    /// </summary>
    private static (string Text, string What)? ReplaceLeaf(string text, Random random)
    {
        // JsonNode decodes names and strings lazily, so a document an earlier step broke (a duplicated key, a lone
        // surrogate) can throw at any point here; such a document gets a token-level mutation instead.
        try
        {
            var root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = 256 });
            var leaves = new List<JsonNode>();
            Collect(root, leaves);
            if (leaves.Count == 0)
                return null;
            var leaf = leaves[random.Next(leaves.Count)];
            string with = leaf.GetValueKind() == JsonValueKind.Number && random.Next(3) > 0
                ? Numbers[random.Next(Numbers.Length)]
                : Replacements[random.Next(Replacements.Length)];
            var at = leaf.GetPath();
            var replacement = JsonNode.Parse(with);
            switch (leaf.Parent)
            {
                case JsonObject o:
                    o[leaf.GetPropertyName()] = replacement;
                    break;
                case JsonArray a:
                    a[leaf.GetElementIndex()] = replacement;
                    break;
            }
            // A parsed value is written back as its original text, so 1e400 stays 1e400.
            return (root!.ToJsonString(), $"{at} = {Clip(with)}");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    private static void Collect(JsonNode? node, List<JsonNode> leaves)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, child) in o)
                    Collect(child, leaves);
                break;
            case JsonArray a:
                foreach (var child in a)
                    Collect(child, leaves);
                break;
            case JsonValue v when v.Parent != null:
                leaves.Add(v);
                break;
        }
    }

    private static string TweakNumber(string number, Random random)
    {
        if (!long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
            return random.Next(2) == 0 ? "-" + number : number + "e300";
        return random.Next(6) switch
        {
            0 => (n + 1).ToString(CultureInfo.InvariantCulture),
            1 => (n - 1).ToString(CultureInfo.InvariantCulture),
            2 => (-n).ToString(CultureInfo.InvariantCulture),
            3 => (n * 1_000_000_007L).ToString(CultureInfo.InvariantCulture),
            4 => (n / 2).ToString(CultureInfo.InvariantCulture),
            _ => ((long)random.Next() << random.Next(32)).ToString(CultureInfo.InvariantCulture),
        };
    }

    /// <summary>Puts bytes that are not UTF-8 (a lone continuation byte, 0xFF, an encoded surrogate, a cut sequence) into a string or key.</summary>
    private static (byte[] Bytes, string What) InjectInvalidUtf8(string text, List<Token> tokens, Random random)
    {
        byte[][] bad = [[0xFF], [0x80], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF]];
        var strings = tokens.Where(t => t.Kind == Kind.String).ToList();
        var token = strings.Count > 0 ? strings[random.Next(strings.Count)] : tokens[random.Next(tokens.Count)];
        int at = token.Kind == Kind.String ? token.Start + 1 : token.Start;
        var before = Encoding.UTF8.GetBytes(text[..at]);
        var after = Encoding.UTF8.GetBytes(text[at..]);
        var insert = bad[random.Next(bad.Length)];
        return ([.. before, .. insert, .. after], $"insert bytes {Convert.ToHexString(insert)} at char {at}");
    }

    private static string Splice(string text, Token t, string with) => text[..t.Start] + with + text[t.End..];

    private static string Show(string text, Token t) => Clip(text[t.Start..t.End]);

    private static string Clip(string s) => s.Length <= 40 ? s : s[..37] + "...";

    /// <summary>The tokens of a JSON text, leniently: whatever is not a string, number or literal is one-character punctuation.</summary>
    private static List<Token> Lex(string text)
    {
        var tokens = new List<Token>();
        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '"')
            {
                int j = i + 1;
                while (j < text.Length && text[j] != '"')
                    j += text[j] == '\\' ? 2 : 1;
                j = Math.Min(j + 1, text.Length);
                tokens.Add(new Token(Kind.String, i, j));
                i = j;
            }
            else if (c == '-' || char.IsAsciiDigit(c))
            {
                int j = i + 1;
                while (j < text.Length && (char.IsAsciiDigit(text[j]) || text[j] is '.' or 'e' or 'E' or '+' or '-'))
                    j++;
                tokens.Add(new Token(Kind.Number, i, j));
                i = j;
            }
            else if (char.IsAsciiLetter(c))
            {
                int j = i + 1;
                while (j < text.Length && char.IsAsciiLetter(text[j]))
                    j++;
                tokens.Add(new Token(Kind.Literal, i, j));
                i = j;
            }
            else
            {
                tokens.Add(new Token(Kind.Punctuation, i, i + 1));
                i++;
            }
        }
        return tokens;
    }
}
