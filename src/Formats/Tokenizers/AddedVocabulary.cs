using System.Text;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// The added tokens and the matching of them in input text: leftmost-longest, non-overlapping, with the
/// single_word / lstrip / rstrip rules applied to each match found (a match rejected by single_word is not
/// retried as a shorter one, as in the Hugging Face library).
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly Dictionary<int, AddedToken> byId = [];
    private readonly Dictionary<string, int> byContent = new(StringComparer.Ordinal);
    private readonly HashSet<string> specialContents = new(StringComparer.Ordinal);
    /// <summary>For normalized tokens that the normalizer changes: the form matched and decoded.</summary>
    private readonly Dictionary<int, string> normalizedForms = [];
    private readonly Trie rawTrie = new();
    private readonly Trie normalizedTrie = new();

    public AddedVocabulary(IReadOnlyList<AddedToken> tokens, INormalizer? normalizer)
    {
        Tokens = tokens;
        foreach (var token in tokens)
        {
            if (token.Content.Length == 0)
                continue;
            byId[token.Id] = token;
            byContent[token.Content] = token.Id;
            if (token.Special)
                specialContents.Add(token.Content);
            if (token.Normalized)
            {
                var form = normalizer?.Normalize(token.Content) ?? token.Content;
                if (form != token.Content)
                    normalizedForms[token.Id] = form;
                normalizedTrie.Add(form, token.Id);
            }
            else
            {
                rawTrie.Add(token.Content, token.Id);
            }
        }
    }

    public IReadOnlyList<AddedToken> Tokens { get; }

    public int? MaxId => byId.Count == 0 ? null : byId.Keys.Max();

    public bool TryGetId(string content, out int id) => byContent.TryGetValue(content, out id);

    public bool TryGetToken(int id, out AddedToken token) => byId.TryGetValue(id, out token!);

    /// <summary>The string decoding starts from: the normalized form for normalized tokens the normalizer changes.</summary>
    public string? DecodingForm(int id) =>
        normalizedForms.TryGetValue(id, out var form) ? form : byId.TryGetValue(id, out var t) ? t.Content : null;

    /// <summary>Whether a token string is the content of a special token (what skipping special tokens tests).</summary>
    public bool IsSpecialContent(string token) => specialContents.Contains(token);

    /// <summary>Splits <paramref name="piece"/> at the tokens matched against raw input (normalized = false).</summary>
    public void SplitRaw(TextPiece piece, List<TextPiece> output) => Split(piece, rawTrie, output);

    /// <summary>Splits a normalized <paramref name="piece"/> at the tokens with normalized = true.</summary>
    public void SplitNormalized(TextPiece piece, List<TextPiece> output) => Split(piece, normalizedTrie, output);

    private void Split(TextPiece piece, Trie trie, List<TextPiece> output)
    {
        var text = piece.Text;
        if (trie.IsEmpty)
        {
            if (text.Length > 0)
                output.Add(piece);
            return;
        }

        int emitted = 0; // end of what has been emitted so far
        foreach (var (matchStart, matchEnd, id) in trie.FindLeftmostLongest(text))
        {
            var token = byId[id];
            int start = matchStart, end = matchEnd;
            if (token.SingleWord && (EndsWithWordCharacter(text, start) || StartsWithWordCharacter(text, end)))
                continue;
            if (token.LStrip)
            {
                while (start > emitted && IsWhiteSpaceBefore(text, start, out int width))
                    start -= width;
            }
            if (token.RStrip)
            {
                while (end < text.Length && IsWhiteSpaceAt(text, end, out int width))
                    end += width;
            }
            if (start > emitted)
                output.Add(TextPiece.FromText(text[emitted..start], piece.AtInputStart && emitted == 0));
            output.Add(new TextPiece(text[start..end], id, piece.AtInputStart && start == 0));
            emitted = end;
        }
        if (emitted < text.Length)
            output.Add(TextPiece.FromText(text[emitted..], piece.AtInputStart && emitted == 0));
    }

    private static bool IsWhiteSpaceAt(string text, int index, out int width)
    {
        Rune.DecodeFromUtf16(text.AsSpan(index), out var r, out width);
        return Rune.IsWhiteSpace(r);
    }

    private static bool IsWhiteSpaceBefore(string text, int index, out int width)
    {
        Rune.DecodeLastFromUtf16(text.AsSpan(0, index), out var r, out width);
        return Rune.IsWhiteSpace(r);
    }

    private static bool EndsWithWordCharacter(string text, int index) =>
        index > 0 && Rune.DecodeLastFromUtf16(text.AsSpan(0, index), out var r, out _) == System.Buffers.OperationStatus.Done
        && IsWordCharacter(r);

    private static bool StartsWithWordCharacter(string text, int index) =>
        index < text.Length && Rune.DecodeFromUtf16(text.AsSpan(index), out var r, out _) == System.Buffers.OperationStatus.Done
        && IsWordCharacter(r);

    /// <summary>Rust regex's \w: letters, marks, decimal and letter numbers, connector punctuation, joiners.</summary>
    private static bool IsWordCharacter(Rune r) =>
        Rune.IsLetterOrDigit(r) || r.Value is 0x200C or 0x200D
        || Rune.GetUnicodeCategory(r) is System.Globalization.UnicodeCategory.NonSpacingMark
            or System.Globalization.UnicodeCategory.SpacingCombiningMark or System.Globalization.UnicodeCategory.EnclosingMark
            or System.Globalization.UnicodeCategory.LetterNumber or System.Globalization.UnicodeCategory.ConnectorPunctuation;

    /// <summary>A character trie over the token contents.</summary>
    private sealed class Trie
    {
        private readonly Node root = new();

        public bool IsEmpty => root.Children.Count == 0;

        public void Add(string content, int id)
        {
            if (content.Length == 0)
                return;
            var node = root;
            foreach (char c in content)
            {
                if (!node.Children.TryGetValue(c, out var child))
                    node.Children[c] = child = new Node();
                node = child;
            }
            node.TokenId = id;
        }

        /// <summary>Non-overlapping matches, each the longest one starting at the leftmost position where any matches.</summary>
        public IEnumerable<(int Start, int End, int Id)> FindLeftmostLongest(string text)
        {
            for (int i = 0; i < text.Length;)
            {
                int end = -1, id = -1;
                var node = root;
                for (int j = i; j < text.Length && node.Children.TryGetValue(text[j], out var child); j++)
                {
                    node = child;
                    if (node.TokenId >= 0)
                        (end, id) = (j + 1, node.TokenId);
                }
                if (end < 0)
                {
                    i++;
                    continue;
                }
                yield return (i, end, id);
                i = end;
            }
        }

        private sealed class Node
        {
            public Dictionary<char, Node> Children { get; } = [];
            public int TokenId { get; set; } = -1;
        }
    }
}
