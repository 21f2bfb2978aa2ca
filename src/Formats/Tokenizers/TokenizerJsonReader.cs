using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Converter.Formats.IO;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// Builds a <see cref="Tokenizer"/> from the JSON of a Hugging Face tokenizer.json. Every problem is a
/// <see cref="TokenizerFormatException"/> naming the source and the JSON path of the offending member.
/// </summary>
internal sealed class TokenizerJsonReader
{
    private readonly string source;

    private TokenizerJsonReader(string source) => this.source = source;

    public static (BpeModel Model, AddedVocabulary Added, INormalizer? Normalizer, IPreTokenizer? PreTokenizer,
        IPostProcessor? PostProcessor, ITokenDecoder? Decoder) Read(string json, string source)
    {
        var reader = new TokenizerJsonReader(source);
        JsonDocument document;
        try
        {
            if (JsonStringCheck.FindUndecodableString(Encoding.UTF8.GetBytes(json), new JsonDocumentOptions().MaxDepth) is { } undecodable)
                throw new TokenizerFormatException(source, $"not valid JSON text: {undecodable}");
            document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(source, $"not valid JSON: {e.Message}", e);
        }
        using (document)
            return reader.ReadRoot(document.RootElement);
    }

    private (BpeModel, AddedVocabulary, INormalizer?, IPreTokenizer?, IPostProcessor?, ITokenDecoder?) ReadRoot(JsonElement root)
    {
        RequireKind(root, JsonValueKind.Object, "$");
        if (Optional(root, "version") is { } version && String(version, "$.version") != "1.0")
            throw Fail("$.version", $"unknown tokenizer.json version '{version.GetString()}' (supported: 1.0)");

        var model = ReadModel(Required(root, "model", "$"), "$.model");
        var normalizer = Optional(root, "normalizer") is { } n ? ReadNormalizer(n, "$.normalizer") : null;
        var preTokenizer = Optional(root, "pre_tokenizer") is { } p ? ReadPreTokenizer(p, "$.pre_tokenizer") : null;
        var decoder = Optional(root, "decoder") is { } d ? ReadDecoder(d, "$.decoder") : null;

        var addedTokens = new List<AddedToken>();
        if (Optional(root, "added_tokens") is { } added)
        {
            RequireKind(added, JsonValueKind.Array, "$.added_tokens");
            int i = 0;
            foreach (var t in added.EnumerateArray())
                addedTokens.Add(ReadAddedToken(t, $"$.added_tokens[{i++}]"));
        }
        var addedVocabulary = new AddedVocabulary(addedTokens, normalizer);

        var postProcessor = Optional(root, "post_processor") is { } pp ? ReadPostProcessor(pp, "$.post_processor") : null;
        return (model, addedVocabulary, normalizer, preTokenizer, postProcessor, decoder);
    }

    // ---- model -------------------------------------------------------------------------------------------

    private BpeModel ReadModel(JsonElement model, string path)
    {
        RequireKind(model, JsonValueKind.Object, path);
        // Files written before models were tagged have no "type"; a BPE model is recognised by its merges.
        var type = Optional(model, "type") is { } t ? String(t, path + ".type")
            : model.TryGetProperty("merges", out _) ? "BPE" : "(untagged, without merges)";
        if (type != "BPE")
            throw Fail(path + ".type", $"unsupported model type '{type}' (supported: BPE)");

        if (Optional(model, "dropout") is { } dropout && Number(dropout, path + ".dropout") > 0)
            throw Fail(path + ".dropout", "BPE dropout is not supported (it makes tokenization random)");

        var vocabElement = Required(model, "vocab", path);
        RequireKind(vocabElement, JsonValueKind.Object, path + ".vocab");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocabElement.EnumerateObject())
        {
            vocab[entry.Name] = TokenId(entry.Value, $"{path}.vocab[{Quote(entry.Name)}]");
        }

        string? prefix = OptionalString(model, "continuing_subword_prefix", path);
        string? suffix = OptionalString(model, "end_of_word_suffix", path);
        int? unkId = null;
        if (OptionalString(model, "unk_token", path) is { } unk)
        {
            if (!vocab.TryGetValue(unk, out int id))
                throw Fail(path + ".unk_token", $"unknown token {Quote(unk)} is not in the vocabulary");
            unkId = id;
        }

        var merges = ReadMerges(Required(model, "merges", path), path + ".merges", vocab, prefix?.Length ?? 0);
        var options = new BpeOptions(
            UnkId: unkId,
            FuseUnk: OptionalBool(model, "fuse_unk", path) ?? false,
            ByteFallback: OptionalBool(model, "byte_fallback", path) ?? false,
            IgnoreMerges: OptionalBool(model, "ignore_merges", path) ?? false,
            ContinuingSubwordPrefix: prefix,
            EndOfWordSuffix: suffix);
        return new BpeModel(vocab, merges, options);
    }

    /// <summary>Merges as "left right" strings (older files) or [left, right] pairs, resolved to ids.</summary>
    private List<(int Left, int Right, int Merged)> ReadMerges(JsonElement merges, string path, Dictionary<string, int> vocab, int prefixLength)
    {
        RequireKind(merges, JsonValueKind.Array, path);
        var result = new List<(int, int, int)>(merges.GetArrayLength());
        int index = 0;
        foreach (var merge in merges.EnumerateArray())
        {
            var at = $"{path}[{index++}]";
            string left, right;
            if (merge.ValueKind == JsonValueKind.String)
            {
                var line = merge.GetString()!;
                if (line.StartsWith("#version", StringComparison.Ordinal))
                    continue;
                var parts = line.Split(' ');
                if (parts.Length != 2)
                    throw Fail(at, $"merge {Quote(line)} is not two tokens separated by one space");
                (left, right) = (parts[0], parts[1]);
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2)
            {
                left = String(merge[0], at + "[0]");
                right = String(merge[1], at + "[1]");
            }
            else
            {
                throw Fail(at, $"a merge must be a \"left right\" string or a [left, right] pair, not {merge.ValueKind}");
            }

            if (right.Length < prefixLength)
                throw Fail(at, $"merge right side {Quote(right)} is shorter than the continuing-subword prefix");
            var merged = left + right[prefixLength..];
            result.Add((VocabId(left), VocabId(right), VocabId(merged)));

            int VocabId(string token) => vocab.TryGetValue(token, out int id) ? id
                : throw Fail(at, $"merge ({Quote(left)}, {Quote(right)}) needs token {Quote(token)}, which is not in the vocabulary");
        }
        return result;
    }

    private AddedToken ReadAddedToken(JsonElement t, string path)
    {
        RequireKind(t, JsonValueKind.Object, path);
        bool special = OptionalBool(t, "special", path) ?? false;
        return new AddedToken(
            Id: TokenId(Required(t, "id", path), path + ".id"),
            Content: String(Required(t, "content", path), path + ".content"),
            Special: special,
            SingleWord: OptionalBool(t, "single_word", path) ?? false,
            LStrip: OptionalBool(t, "lstrip", path) ?? false,
            RStrip: OptionalBool(t, "rstrip", path) ?? false,
            Normalized: OptionalBool(t, "normalized", path) ?? !special);
    }

    // ---- normalizers -------------------------------------------------------------------------------------

    private INormalizer ReadNormalizer(JsonElement n, string path)
    {
        var type = TypeOf(n, path);
        switch (type)
        {
            case "Sequence":
                return new SequenceNormalizer(ReadList(n, "normalizers", path, ReadNormalizer));
            case "Prepend":
                return new PrependNormalizer(String(Required(n, "prepend", path), path + ".prepend"));
            case "Replace":
                return ReadReplace(n, path);
            case "NFC" or "NFD" or "NFKC" or "NFKD":
                if (!UnicodeNormalization.IsAvailable)
                {
                    throw Fail(path, $"normalizer {type} needs Unicode normalization, which this process lacks "
                        + "(globalization-invariant mode and no ICU library found)");
                }
                return new UnicodeNormalizer(type switch
                {
                    "NFC" => NormalizationForm.FormC,
                    "NFD" => NormalizationForm.FormD,
                    "NFKC" => NormalizationForm.FormKC,
                    _ => NormalizationForm.FormKD,
                });
            case "Lowercase":
                return new LowercaseNormalizer();
            case "Strip":
                return new StripNormalizer(OptionalBool(n, "strip_left", path) ?? true, OptionalBool(n, "strip_right", path) ?? true);
            case "ByteLevel":
                return new ByteLevelNormalizer();
            default:
                throw Fail(path + ".type", $"unsupported normalizer type '{type}' "
                    + "(supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip, ByteLevel)");
        }
    }

    private ReplaceNormalizer ReadReplace(JsonElement n, string path)
    {
        var content = String(Required(n, "content", path), path + ".content");
        var (literal, regex) = ReadPattern(Required(n, "pattern", path), path + ".pattern");
        return new ReplaceNormalizer(literal, regex, content);
    }

    /// <summary>A {"String": s} or {"Regex": r} pattern: the literal, or the compiled regex.</summary>
    private (string? Literal, UnicodeRegex? Regex) ReadPattern(JsonElement pattern, string path)
    {
        RequireKind(pattern, JsonValueKind.Object, path);
        if (Optional(pattern, "String") is { } s)
        {
            var literal = String(s, path + ".String");
            if (literal.Length == 0)
                throw Fail(path + ".String", "empty string pattern");
            return (literal, null);
        }
        if (Optional(pattern, "Regex") is { } r)
            return (null, CompileRegex(String(r, path + ".Regex"), path + ".Regex"));
        throw Fail(path, "a pattern must have a \"String\" or a \"Regex\" member");
    }

    private UnicodeRegex CompileRegex(string pattern, string path)
    {
        try
        {
            return new UnicodeRegex(pattern);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException(source, $"invalid regex {Quote(pattern)}: {e.Message} (at {path})", e);
        }
    }

    // ---- pre-tokenizers ----------------------------------------------------------------------------------

    private IPreTokenizer ReadPreTokenizer(JsonElement p, string path)
    {
        var type = TypeOf(p, path);
        switch (type)
        {
            case "Sequence":
                return new SequencePreTokenizer(ReadList(p, "pretokenizers", path, ReadPreTokenizer));
            case "ByteLevel":
                return new ByteLevelPreTokenizer(
                    addPrefixSpace: OptionalBool(p, "add_prefix_space", path) ?? true,
                    useRegex: OptionalBool(p, "use_regex", path) ?? true);
            case "Split":
                {
                    var (literal, regex) = ReadPattern(Required(p, "pattern", path), path + ".pattern");
                    regex ??= CompileRegex(Regex.Escape(literal!), path + ".pattern");
                    return new SplitPreTokenizer(regex, ReadBehavior(Required(p, "behavior", path), path + ".behavior"),
                        OptionalBool(p, "invert", path) ?? false);
                }
            case "Metaspace":
                return new MetaspacePreTokenizer(ReadReplacement(p, path), ReadPrependScheme(p, path),
                    OptionalBool(p, "split", path) ?? true);
            case "Digits":
                return CharacterClassPreTokenizer.Digits(OptionalBool(p, "individual_digits", path) ?? false);
            case "WhitespaceSplit":
                return CharacterClassPreTokenizer.WhitespaceSplit();
            case "Whitespace":
                return new WhitespacePreTokenizer();
            case "Punctuation":
                return CharacterClassPreTokenizer.Punctuation(
                    Optional(p, "behavior") is { } b ? ReadBehavior(b, path + ".behavior") : SplitBehavior.Isolated);
            default:
                throw Fail(path + ".type", $"unsupported pre_tokenizer type '{type}' "
                    + "(supported: Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation)");
        }
    }

    private SplitBehavior ReadBehavior(JsonElement b, string path)
    {
        var name = String(b, path);
        return Enum.TryParse<SplitBehavior>(name, ignoreCase: false, out var behavior) && Enum.IsDefined(behavior)
            ? behavior
            : throw Fail(path, $"unknown split behavior '{name}' (known: {string.Join(", ", Enum.GetNames<SplitBehavior>())})");
    }

    private char ReadReplacement(JsonElement m, string path)
    {
        var replacement = String(Required(m, "replacement", path), path + ".replacement");
        return replacement.Length == 1 ? replacement[0]
            : throw Fail(path + ".replacement", $"replacement {Quote(replacement)} must be one character");
    }

    /// <summary>"prepend_scheme" (default "always"), or the older boolean "add_prefix_space" (false means "never").</summary>
    private PrependScheme ReadPrependScheme(JsonElement m, string path)
    {
        var scheme = PrependScheme.Always;
        if (OptionalString(m, "prepend_scheme", path) is { } name)
        {
            scheme = name switch
            {
                "first" => PrependScheme.First,
                "always" => PrependScheme.Always,
                "never" => PrependScheme.Never,
                _ => throw Fail(path + ".prepend_scheme", $"unknown prepend_scheme '{name}' (known: first, always, never)"),
            };
        }
        if (OptionalBool(m, "add_prefix_space", path) == false)
        {
            if (scheme != PrependScheme.Never && OptionalString(m, "prepend_scheme", path) != null)
                throw Fail(path + ".add_prefix_space", "add_prefix_space false contradicts the declared prepend_scheme");
            scheme = PrependScheme.Never;
        }
        return scheme;
    }

    // ---- post-processors ---------------------------------------------------------------------------------

    private IPostProcessor ReadPostProcessor(JsonElement p, string path)
    {
        var type = TypeOf(p, path);
        switch (type)
        {
            case "Sequence":
                return new SequencePostProcessor(ReadList(p, "processors", path, ReadPostProcessor));
            case "ByteLevel":
                return new ByteLevelPostProcessor();
            case "TemplateProcessing":
                return ReadTemplate(p, path);
            default:
                throw Fail(path + ".type", $"unsupported post_processor type '{type}' (supported: TemplateProcessing, ByteLevel, Sequence)");
        }
    }

    private TemplatePostProcessor ReadTemplate(JsonElement p, string path)
    {
        var specialTokens = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var specials = Required(p, "special_tokens", path);
        RequireKind(specials, JsonValueKind.Object, path + ".special_tokens");
        foreach (var entry in specials.EnumerateObject())
        {
            var at = $"{path}.special_tokens[{Quote(entry.Name)}]";
            var idsElement = Required(entry.Value, "ids", at);
            RequireKind(idsElement, JsonValueKind.Array, at + ".ids");
            specialTokens[entry.Name] = [.. idsElement.EnumerateArray().Select((e, i) => TokenId(e, $"{at}.ids[{i}]"))];
        }

        var single = Required(p, "single", path);
        RequireKind(single, JsonValueKind.Array, path + ".single");
        var before = new List<int>();
        var after = new List<int>();
        bool seenSequence = false;
        int index = 0;
        foreach (var item in single.EnumerateArray())
        {
            var at = $"{path}.single[{index++}]";
            if (Optional(item, "SpecialToken") is { } special)
            {
                var name = String(Required(special, "id", at + ".SpecialToken"), at + ".SpecialToken.id");
                if (!specialTokens.TryGetValue(name, out var ids))
                    throw Fail(at, $"special token {Quote(name)} is not in special_tokens");
                (seenSequence ? after : before).AddRange(ids);
            }
            else if (Optional(item, "Sequence") is { } sequence)
            {
                var id = String(Required(sequence, "id", at + ".Sequence"), at + ".Sequence.id");
                if (id != "A" || seenSequence)
                    throw Fail(at, $"the single-sequence template may contain $A once, not ${id}");
                seenSequence = true;
            }
            else
            {
                throw Fail(at, "a template item must be a SpecialToken or a Sequence");
            }
        }
        if (!seenSequence)
            throw Fail(path + ".single", "the template has no $A");
        return new TemplatePostProcessor([.. before], [.. after]);
    }

    // ---- decoders ----------------------------------------------------------------------------------------

    private ITokenDecoder ReadDecoder(JsonElement d, string path)
    {
        var type = TypeOf(d, path);
        switch (type)
        {
            case "Sequence":
                return new SequenceDecoder(ReadList(d, "decoders", path, ReadDecoder));
            case "ByteLevel":
                return new ByteLevelDecoder();
            case "Metaspace":
                return new MetaspaceDecoder(ReadReplacement(d, path), ReadPrependScheme(d, path));
            case "Replace":
                return new ReplaceDecoder(ReadReplace(d, path));
            case "ByteFallback":
                return new ByteFallbackDecoder();
            case "Fuse":
                return new FuseDecoder();
            case "Strip":
                {
                    var content = String(Required(d, "content", path), path + ".content");
                    if (content.Length != 1)
                        throw Fail(path + ".content", $"strip content {Quote(content)} must be one character");
                    return new StripDecoder(content[0], Int(Required(d, "start", path), path + ".start"),
                        Int(Required(d, "stop", path), path + ".stop"));
                }
            default:
                throw Fail(path + ".type", $"unsupported decoder type '{type}' "
                    + "(supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)");
        }
    }

    // ---- JSON helpers ------------------------------------------------------------------------------------

    private TokenizerFormatException Fail(string path, string message) => new(source, $"{message} (at {path})");

    private static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A string as a JSON literal for messages, with control characters escaped but "&lt;" etc. as they are.</summary>
    internal static string Quote(string s) => JsonSerializer.Serialize(s, Readable);

    private void RequireKind(JsonElement e, JsonValueKind kind, string path)
    {
        if (e.ValueKind != kind)
            throw Fail(path, $"expected {kind.ToString().ToLowerInvariant()}, found {e.ValueKind.ToString().ToLowerInvariant()}");
    }

    /// <summary>The member, or null when it is absent or JSON null.</summary>
    private static JsonElement? Optional(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private JsonElement Required(JsonElement obj, string name, string path)
    {
        RequireKind(obj, JsonValueKind.Object, path);
        return Optional(obj, name) ?? throw Fail(path, $"missing member \"{name}\"");
    }

    private string TypeOf(JsonElement obj, string path) => String(Required(obj, "type", path), path + ".type");

    private string String(JsonElement e, string path)
    {
        RequireKind(e, JsonValueKind.String, path);
        return e.GetString()!;
    }

    private string? OptionalString(JsonElement obj, string name, string path) =>
        Optional(obj, name) is { } v ? String(v, $"{path}.{name}") : null;

    private bool? OptionalBool(JsonElement obj, string name, string path)
    {
        if (Optional(obj, name) is not { } v)
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Fail($"{path}.{name}", $"expected true or false, found {v.ValueKind.ToString().ToLowerInvariant()}"),
        };
    }

    private int Int(JsonElement e, string path)
    {
        RequireKind(e, JsonValueKind.Number, path);
        return e.TryGetInt32(out int value) ? value : throw Fail(path, $"{e.GetRawText()} is not a 32-bit integer");
    }

    /// <summary>
    /// A token id: not negative, and below int.MaxValue so that the vocabulary size (largest id + 1) is an int, as the
    /// Hugging Face library's u32 ids are in practice.
    /// </summary>
    private int TokenId(JsonElement e, string path)
    {
        int id = Int(e, path);
        return id is >= 0 and < int.MaxValue ? id : throw Fail(path, $"token id {id} is outside 0..{int.MaxValue - 1}");
    }

    private double Number(JsonElement e, string path)
    {
        RequireKind(e, JsonValueKind.Number, path);
        return e.GetDouble();
    }

    private List<T> ReadList<T>(JsonElement obj, string member, string path, Func<JsonElement, string, T> read)
    {
        var array = Required(obj, member, path);
        RequireKind(array, JsonValueKind.Array, $"{path}.{member}");
        var result = new List<T>();
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            result.Add(read(item, $"{path}.{member}[{i}]"));
            i++;
        }
        return result;
    }
}
