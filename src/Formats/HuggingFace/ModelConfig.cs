using System.Text.Json;
using System.Text.Json.Nodes;
using Converter.Formats.IO;

namespace Converter.Formats.HuggingFace;

/// <summary>
/// The parts of a Hugging Face <c>config.json</c> that every decoder architecture shares, validated. The
/// architecture-specific keys are read by the architecture's declaration (Models/Architectures) through
/// <see cref="Fields"/>. <see cref="Json"/> keeps the whole parsed object, unknown keys included, so that the
/// converter can write a modified config.json without losing anything.
/// </summary>
public sealed class ModelConfig
{
    public const string FileName = "config.json";

    /// <summary>
    /// The most layers (and, in the architectures, experts per layer) a config may declare. Published models have at
    /// most a few hundred of either (DeepSeek-V3: 61 layers, 256 experts; Kimi K2: 384 experts); a model of this many
    /// still builds in milliseconds, while a corrupt count of 2^31 would not finish.
    /// </summary>
    public const int MaxCount = 4096;

    /// <summary>
    /// The widest dimension a config may declare (hidden, intermediate and vocabulary sizes, heads, head_dim, and the
    /// query projection's heads × head_dim): 2^20, far above any published model (Llama 3.1 405B: hidden 16,384,
    /// intermediate 53,248; Gemma 3: vocabulary 262,144), so that sums and products of two widths stay exact in a
    /// long and a projection's width fits an int.
    /// </summary>
    public const int MaxDimension = 1 << 20;

    private ModelConfig(string path, JsonObject json, ConfigFields fields)
    {
        Path = path;
        Json = json;
        Fields = fields;
    }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>The complete parsed config; edit and save it to rewrite config.json.</summary>
    public JsonObject Json { get; }

    /// <summary>
    /// Typed access to the language model's keys: the top level, or for a multimodal wrapper whose top level has no
    /// hidden_size (e.g. Gemma3ForConditionalGeneration) <c>text_config</c> first, then the top level. transformers reads
    /// the text model's keys from text_config only, but some wrappers' configs keep keys such as sliding_window_pattern,
    /// layer_types or tie_word_embeddings at the top level (exllamav3 reads Gemma 3's layer_types only there), so a key
    /// text_config lacks is taken from the top rather than defaulted.
    /// </summary>
    public ConfigFields Fields { get; }

    /// <summary>The top level's <c>architectures</c> list (transformers class names), possibly empty.</summary>
    public IReadOnlyList<string> ArchitectureNames { get; private init; } = [];

    /// <summary>The top level's <c>model_type</c>, if any.</summary>
    public string? ModelType { get; private init; }

    public int HiddenSize { get; private init; }
    public int IntermediateSize { get; private init; }
    public int NumHiddenLayers { get; private init; }
    public int NumAttentionHeads { get; private init; }

    /// <summary>num_key_value_heads, defaulting to <see cref="NumAttentionHeads"/> (no GQA).</summary>
    public int NumKeyValueHeads { get; private init; }

    /// <summary>head_dim when the config sets it (Qwen3 decouples it from hidden size), else hidden_size / heads.</summary>
    public int HeadDim { get; private init; }

    public int VocabSize { get; private init; }
    public int MaxPositionEmbeddings { get; private init; }

    /// <summary>True when lm_head shares the embedding matrix (the checkpoint then usually has no lm_head.weight).</summary>
    public bool TieWordEmbeddings { get; private init; }

    public int? BosTokenId { get; private init; }

    /// <summary>eos_token_id, which may be one id or a list.</summary>
    public IReadOnlyList<int> EosTokenIds { get; private init; } = [];

    public int? PadTokenId { get; private init; }

    /// <summary>The checkpoint's dtype as transformers spells it ("bfloat16"), from "dtype" or the older "torch_dtype".</summary>
    public string? TorchDtype { get; private init; }

    /// <summary>Query heads per key/value head.</summary>
    public int GroupSize => NumAttentionHeads / NumKeyValueHeads;

    /// <summary>Reads <c>config.json</c> from a model directory, or the given file.</summary>
    public static ModelConfig Load(string directoryOrFile)
    {
        var path = Directory.Exists(directoryOrFile) ? System.IO.Path.Combine(directoryOrFile, FileName) : directoryOrFile;
        if (!File.Exists(path))
            throw new ModelConfigException(path, "file not found");
        var json = ReadJsonObject(path);
        return Parse(json, path);
    }

    /// <summary>
    /// config.json as a JSON object, refused with a <see cref="ModelConfigException"/> naming the file when it is not
    /// one: undecodable strings, duplicate keys and malformed JSON included. For readers that need only a few keys.
    /// </summary>
    public static JsonObject ReadJsonObject(string path)
    {
        var bytes = File.ReadAllBytes(path);
        JsonNode? node;
        try
        {
            // Checked before parsing: the parser's duplicate-key check decodes names, and would throw on an undecodable one.
            if (JsonStringCheck.FindUndecodableString(bytes, new JsonDocumentOptions().MaxDepth) is { } undecodable)
                throw new ModelConfigException(path, $"not valid JSON text: {undecodable}");
            // A key given twice is ambiguous (Python keeps the last, a JsonObject throws on first use): refuse it here.
            node = JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new ModelConfigException(path, $"not valid JSON: {e.Message}", e);
        }
        return node as JsonObject ?? throw new ModelConfigException(path, "expected a JSON object");
    }

    /// <summary>Interprets an already-parsed config; <paramref name="path"/> names it in errors.</summary>
    public static ModelConfig Parse(JsonObject json, string path)
    {
        var top = new ConfigFields(json, path);
        var f = !top.Has("hidden_size") && top.Object("text_config") is { } text ? text.WithFallback(top) : top;

        var hidden = f.RequiredDimension("hidden_size");
        var heads = f.RequiredDimension("num_attention_heads");
        var kvHeads = f.OptionalInt("num_key_value_heads") ?? heads;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw f.Error($"num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        var headDim = f.OptionalInt("head_dim") ?? (hidden % heads == 0
            ? hidden / heads
            : throw f.Error($"hidden_size {hidden} is not divisible by num_attention_heads {heads} and head_dim is not set"));
        if (headDim <= 0 || headDim % 2 != 0)
            throw f.Error($"head_dim {headDim} must be a positive even number (RoPE rotates pairs)");
        if ((long)heads * headDim > MaxDimension)
            throw f.Error($"num_attention_heads {heads} × head_dim {headDim} is more than the {MaxDimension:N0} this toolchain accepts");

        return new ModelConfig(path, json, f)
        {
            ArchitectureNames = top.StringList("architectures"),
            ModelType = top.OptionalString("model_type"),
            HiddenSize = hidden,
            IntermediateSize = f.RequiredDimension("intermediate_size"),
            NumHiddenLayers = f.RequiredCount("num_hidden_layers", MaxCount),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = f.RequiredDimension("vocab_size"),
            MaxPositionEmbeddings = f.RequiredPositiveInt("max_position_embeddings"),
            TieWordEmbeddings = f.OptionalBool("tie_word_embeddings") ?? false,
            BosTokenId = f.OptionalInt("bos_token_id"),
            EosTokenIds = f.IntOrIntList("eos_token_id"),
            PadTokenId = f.OptionalInt("pad_token_id"),
            TorchDtype = f.OptionalString("dtype") ?? f.OptionalString("torch_dtype"),
        };
    }

    /// <summary>
    /// Writes <see cref="Json"/> (with any edits) atomically, indented as transformers writes it; keys the parser does
    /// not know are kept. Properties of this object are not re-read, so edit the JSON, then Load again if needed.
    /// </summary>
    public void SaveJson(string path) =>
        AtomicFile.WriteAllText(path, Json.ToJsonString(SaveOptions) + "\n");

    // Relaxed escaping keeps non-ASCII and '<', '&' in strings readable, as Python's json.dump(ensure_ascii=False) would.
    private static readonly JsonSerializerOptions SaveOptions = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public override string ToString() =>
        $"{string.Join(", ", ArchitectureNames)}: {NumHiddenLayers} layers, hidden {HiddenSize}, heads {NumAttentionHeads}/{NumKeyValueHeads} × {HeadDim}, vocab {VocabSize}";
}
