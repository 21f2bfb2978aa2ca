using System.Globalization;
using System.Text;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// One tokenizer.json "pre_tokenizer": cuts text pieces into the words the model tokenizes separately (and may
/// rewrite them). Added-token pieces pass through untouched; empty pieces are dropped.
/// </summary>
internal interface IPreTokenizer
{
    /// <summary>Appends what <paramref name="piece"/> (a text piece) becomes to <paramref name="output"/>.</summary>
    void PreTokenize(TextPiece piece, List<TextPiece> output);
}

internal static class PreTokenizerExtensions
{
    /// <summary>Runs <paramref name="preTokenizer"/> over every text piece of <paramref name="pieces"/>.</summary>
    public static List<TextPiece> Apply(this IPreTokenizer preTokenizer, List<TextPiece> pieces)
    {
        var output = new List<TextPiece>(pieces.Count * 2);
        foreach (var piece in pieces)
        {
            if (piece.IsToken)
                output.Add(piece);
            else
                preTokenizer.PreTokenize(piece, output);
        }
        return output;
    }
}

internal sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> steps) : IPreTokenizer
{
    public void PreTokenize(TextPiece piece, List<TextPiece> output)
    {
        var pieces = new List<TextPiece> { piece };
        foreach (var step in steps)
            pieces = step.Apply(pieces);
        output.AddRange(pieces);
    }
}

/// <summary>
/// GPT-2 byte-level: optionally a space in front, optionally GPT-2's word regex, then every UTF-8 byte written
/// as its <see cref="ByteLevelAlphabet"/> character.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    /// <summary>GPT-2's pre-tokenization pattern, as the Hugging Face library hard-codes it for ByteLevel.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly UnicodeRegex Gpt2Regex = new(Gpt2Pattern);

    public void PreTokenize(TextPiece piece, List<TextPiece> output)
    {
        if (addPrefixSpace && !piece.Text.StartsWith(' '))
            piece = piece with { Text = " " + piece.Text };
        if (!useRegex)
        {
            output.Add(piece with { Text = ByteLevelAlphabet.Encode(piece.Text) });
            return;
        }
        int first = output.Count;
        var matches = new List<(int Start, int End)>();
        Gpt2Regex.FindMatches(piece.Text, matches);
        PieceSplitter.Split(piece, matches, SplitBehavior.Isolated, invert: false, output);
        for (int i = first; i < output.Count; i++)
            output[i] = output[i] with { Text = ByteLevelAlphabet.Encode(output[i].Text) };
    }
}

/// <summary>Splits at a literal string or regex (Llama-3 and Qwen2 put their word regex here).</summary>
internal sealed class SplitPreTokenizer(UnicodeRegex pattern, SplitBehavior behavior, bool invert) : IPreTokenizer
{
    public void PreTokenize(TextPiece piece, List<TextPiece> output)
    {
        var matches = new List<(int Start, int End)>();
        pattern.FindMatches(piece.Text, matches);
        PieceSplitter.Split(piece, matches, behavior, invert, output);
    }
}

internal enum PrependScheme
{
    First,
    Always,
    Never,
}

/// <summary>SentencePiece style: spaces become '▁', one '▁' goes in front per the prepend scheme, optionally split before each '▁'.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme prependScheme, bool split) : IPreTokenizer
{
    public void PreTokenize(TextPiece piece, List<TextPiece> output)
    {
        var text = piece.Text.Replace(' ', replacement);
        bool prepend = prependScheme switch
        {
            PrependScheme.Always => true,
            PrependScheme.First => piece.AtInputStart,
            _ => false,
        };
        if (prepend && !text.StartsWith(replacement))
            text = replacement + text;
        piece = piece with { Text = text };
        if (!split)
        {
            output.Add(piece);
            return;
        }
        var matches = new List<(int Start, int End)>();
        PieceSplitter.FindCharacters(text, r => r.Value == replacement, matches);
        PieceSplitter.Split(piece, matches, SplitBehavior.MergedWithNext, invert: false, output);
    }
}

/// <summary>Splits at characters of a class: digits, whitespace or punctuation pre-tokenizers.</summary>
internal sealed class CharacterClassPreTokenizer(Func<Rune, bool> isDelimiter, SplitBehavior behavior) : IPreTokenizer
{
    public static CharacterClassPreTokenizer Digits(bool individualDigits) =>
        new(Rune.IsNumber, individualDigits ? SplitBehavior.Isolated : SplitBehavior.Contiguous);

    public static CharacterClassPreTokenizer WhitespaceSplit() => new(Rune.IsWhiteSpace, SplitBehavior.Removed);

    public static CharacterClassPreTokenizer Punctuation(SplitBehavior behavior) => new(IsPunctuation, behavior);

    /// <summary>Unicode punctuation (categories P*) plus ASCII punctuation, which includes symbols such as '$' and '+'.</summary>
    private static bool IsPunctuation(Rune r)
    {
        if (r.IsAscii)
            return r.Value is (>= 0x21 and <= 0x2F) or (>= 0x3A and <= 0x40) or (>= 0x5B and <= 0x60) or (>= 0x7B and <= 0x7E);
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    public void PreTokenize(TextPiece piece, List<TextPiece> output)
    {
        var matches = new List<(int Start, int End)>();
        PieceSplitter.FindCharacters(piece.Text, isDelimiter, matches);
        PieceSplitter.Split(piece, matches, behavior, invert: false, output);
    }
}

/// <summary>
/// The "Whitespace" pre-tokenizer: keeps runs of word characters and runs of other non-space characters.
/// The Hugging Face library uses Rust's \w (Alphabetic, marks, decimal digits, connector punctuation, joiners);
/// the class below spells that out for .NET, whose \w lacks Nl and spacing/enclosing marks.
/// </summary>
internal sealed class WhitespacePreTokenizer : IPreTokenizer
{
    private const string Word = @"\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}\u200C\u200D";
    private static readonly UnicodeRegex WordsAndSymbols = new($"[{Word}]+|[^{Word}\\s]+");

    public void PreTokenize(TextPiece piece, List<TextPiece> output)
    {
        var matches = new List<(int Start, int End)>();
        WordsAndSymbols.FindMatches(piece.Text, matches);
        PieceSplitter.Split(piece, matches, SplitBehavior.Removed, invert: true, output);
    }
}
