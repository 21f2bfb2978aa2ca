using System.Text;

namespace Converter.Formats.Tokenizers;

/// <summary>One tokenizer.json "normalizer": rewrites a piece of input text before pre-tokenization.</summary>
internal interface INormalizer
{
    string Normalize(string text);
}

internal sealed class SequenceNormalizer(IReadOnlyList<INormalizer> normalizers) : INormalizer
{
    public string Normalize(string text)
    {
        foreach (var n in normalizers)
            text = n.Normalize(text);
        return text;
    }
}

/// <summary>Llama-2/Mistral's "▁" in front of every non-empty piece.</summary>
internal sealed class PrependNormalizer(string prefix) : INormalizer
{
    public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

/// <summary>Replaces every occurrence of a literal string or every match of a regex.</summary>
internal sealed class ReplaceNormalizer : INormalizer
{
    private readonly string? literal;
    private readonly UnicodeRegex? regex;
    private readonly string content;

    public ReplaceNormalizer(string? literal, UnicodeRegex? regex, string content)
    {
        this.literal = literal;
        this.regex = regex;
        this.content = content;
    }

    public string Normalize(string text) =>
        literal != null ? text.Replace(literal, content, StringComparison.Ordinal) : regex!.Replace(text, content);
}

internal sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
{
    public string Normalize(string text) => UnicodeNormalization.Normalize(text, form);
}

/// <summary>
/// Lowercases per character with the full Unicode mapping, like Rust's char::to_lowercase: that differs from
/// .NET's simple mapping only for 'İ' (U+0130 → "i̇", SpecialCasing.txt's one unconditional lowercase rule).
/// </summary>
internal sealed class LowercaseNormalizer : INormalizer
{
    public string Normalize(string text) =>
        (text.Contains('\u0130') ? text.Replace("\u0130", "i\u0307", StringComparison.Ordinal) : text).ToLowerInvariant();
}

internal sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public string Normalize(string text) => (left, right) switch
    {
        (true, true) => text.Trim(),
        (true, false) => text.TrimStart(),
        (false, true) => text.TrimEnd(),
        _ => text,
    };
}

/// <summary>Byte-level as a normalizer: every UTF-8 byte becomes its GPT-2 alphabet character.</summary>
internal sealed class ByteLevelNormalizer : INormalizer
{
    public string Normalize(string text) => ByteLevelAlphabet.Encode(text);
}
