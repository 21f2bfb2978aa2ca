using System.Text.Json;
using Converter.Formats.IO;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// A Hugging Face tokenizer.json with a BPE model, reproducing the Hugging Face tokenizers library's ids:
/// added tokens are cut out of the input first (those with normalized = false on the raw text), the rest is
/// normalized, split at normalized added tokens, pre-tokenized into words, BPE-encoded word by word, and the
/// post-processor adds special tokens (BOS …) on request. Thread-safe.
/// </summary>
public sealed class Tokenizer
{
    private readonly BpeModel model;
    private readonly AddedVocabulary added;
    private readonly INormalizer? normalizer;
    private readonly IPreTokenizer? preTokenizer;
    private readonly IPostProcessor? postProcessor;
    private readonly ITokenDecoder? decoder;

    private Tokenizer(string json, string source, string? configJson, string? configSource)
    {
        (model, added, normalizer, preTokenizer, postProcessor, decoder) = TokenizerJsonReader.Read(json, source);
        VocabSize = Math.Max(model.MaxId, added.MaxId ?? -1) + 1;

        var (configBos, configEos) = configJson == null ? (null, null) : ReadConfigTokens(configJson, configSource!);
        var template = FindTemplate(postProcessor);
        BosTokenId = configBos ?? (template?.Before.Count > 0 ? template.Before[0] : null);
        EosTokenId = configEos ?? (template?.After.Count > 0 ? template.After[^1] : null);
    }

    /// <summary>
    /// Loads a tokenizer.json. The BOS and EOS tokens come from tokenizer_config.json beside it when present
    /// ("bos_token", "eos_token"), else from the post-processor's template (the token before / after $A).
    /// </summary>
    /// <exception cref="TokenizerFormatException">The file is malformed or uses an unsupported component.</exception>
    public static Tokenizer FromFile(string path)
    {
        string json = File.ReadAllText(path);
        var configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "tokenizer_config.json");
        string? configJson = File.Exists(configPath) ? File.ReadAllText(configPath) : null;
        return new Tokenizer(json, path, configJson, configPath);
    }

    /// <summary>Loads tokenizer.json content; <paramref name="source"/> names it in error messages.</summary>
    /// <param name="tokenizerConfigJson">Optional tokenizer_config.json content, for the BOS and EOS tokens.</param>
    public static Tokenizer FromJson(string json, string source = "tokenizer.json", string? tokenizerConfigJson = null) =>
        new(json, source, tokenizerConfigJson, "tokenizer_config.json");

    internal BpeModel Model => model;

    /// <summary>One more than the largest id of the model vocabulary and the added tokens.</summary>
    public int VocabSize { get; }

    public int? BosTokenId { get; }

    public int? EosTokenId { get; }

    public IReadOnlyList<AddedToken> AddedTokens => added.Tokens;

    /// <summary>The id of a token string (added tokens first, then the model vocabulary), or null.</summary>
    public int? TokenToId(string token) => added.TryGetId(token, out int id) ? id : model.TokenToId(token);

    /// <summary>The token string of an id (an added token's content, else the model's token), or null.</summary>
    public string? IdToToken(int id) => added.TryGetToken(id, out var t) ? t.Content : model.IdToToken(id);

    /// <summary>Whether <paramref name="id"/> is an added token marked special.</summary>
    public bool IsSpecialToken(int id) => added.TryGetToken(id, out var t) && t.Special;

    /// <summary>The token ids of <paramref name="text"/>, with the post-processor's special tokens (BOS …) if asked.</summary>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var raw = new List<TextPiece>();
        added.SplitRaw(TextPiece.FromText(text, atInputStart: true), raw);

        var pieces = new List<TextPiece>(raw.Count);
        foreach (var piece in raw)
        {
            if (piece.IsToken)
                pieces.Add(piece);
            else
                added.SplitNormalized(normalizer == null ? piece : piece with { Text = normalizer.Normalize(piece.Text) }, pieces);
        }
        if (preTokenizer != null)
            pieces = preTokenizer.Apply(pieces);

        var ids = new List<int>(text.Length / 3);
        foreach (var piece in pieces)
        {
            if (piece.IsToken)
                ids.Add(piece.TokenId);
            else
                model.Tokenize(piece.Text, ids);
        }
        if (addSpecialTokens && postProcessor != null)
            ids = postProcessor.AddSpecialTokens(ids);
        return [.. ids];
    }

    /// <summary>
    /// The text of <paramref name="ids"/> as the decoder rebuilds it. With <paramref name="skipSpecialTokens"/>,
    /// tokens whose string is a special added token's content are left out — as in the Hugging Face library
    /// this includes "&lt;0xNN&gt;" byte tokens where a tokenizer.json marks them special.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is in neither the vocabulary nor the added tokens.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>(ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            var token = added.DecodingForm(ids[i]) ?? model.IdToToken(ids[i])
                ?? throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} at position {i} is not in the vocabulary");
            if (!(skipSpecialTokens && added.IsSpecialContent(token)))
                tokens.Add(token);
        }
        return decoder == null ? string.Join(' ', tokens) : string.Concat(decoder.DecodeChain(tokens));
    }

    private static TemplatePostProcessor? FindTemplate(IPostProcessor? processor) => processor switch
    {
        TemplatePostProcessor t => t,
        SequencePostProcessor s => s.Processors.Select(FindTemplate).FirstOrDefault(t => t != null),
        _ => null,
    };

    /// <summary>The ids of tokenizer_config.json's "bos_token" and "eos_token" (a string or {"content": …}).</summary>
    private (int? Bos, int? Eos) ReadConfigTokens(string configJson, string configSource)
    {
        try
        {
            if (JsonStringCheck.FindUndecodableString(System.Text.Encoding.UTF8.GetBytes(configJson), new JsonDocumentOptions().MaxDepth) is { } undecodable)
                throw new TokenizerFormatException(configSource, $"not valid JSON text: {undecodable}");
            using var config = JsonDocument.Parse(configJson);
            return (Resolve("bos_token"), Resolve("eos_token"));

            int? Resolve(string member)
            {
                if (config.RootElement.ValueKind != JsonValueKind.Object || !config.RootElement.TryGetProperty(member, out var value))
                    return null;
                var content = value.ValueKind switch
                {
                    JsonValueKind.Null => null,
                    JsonValueKind.String => value.GetString(),
                    JsonValueKind.Object when value.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
                    _ => throw new TokenizerFormatException(configSource, $"\"{member}\" must be a string or an object with \"content\""),
                };
                if (content == null)
                    return null;
                return TokenToId(content) ?? throw new TokenizerFormatException(
                    configSource, $"\"{member}\" names {TokenizerJsonReader.Quote(content)}, which the tokenizer does not know");
            }
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(configSource, $"not valid JSON: {e.Message}", e);
        }
    }
}
