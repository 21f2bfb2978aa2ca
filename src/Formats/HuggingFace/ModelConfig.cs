using System.Text.Json;
using System.Text.Json.Nodes;
using Converter.Formats.IO;

namespace Converter.Formats.HuggingFace;

/// <summary>
/// The parts of a Hugging Face <c>config.json</c> that the converter and the forward pass need, validated, for the
/// architectures in <see cref="ArchitectureSpec.All"/>. <see cref="Json"/> keeps the whole parsed object, unknown
/// keys included, so that the converter can write a modified config.json without losing anything.
/// </summary>
public sealed class ModelConfig
{
    public const string FileName = "config.json";

    private ModelConfig(string path, JsonObject json, ArchitectureSpec spec)
    {
        Path = path;
        Json = json;
        Spec = spec;
    }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>The complete parsed config; edit and save it to rewrite config.json.</summary>
    public JsonObject Json { get; }

    public ArchitectureSpec Spec { get; }

    public ModelArchitecture Architecture => Spec.Architecture;
    public int HiddenSize { get; private init; }
    public int IntermediateSize { get; private init; }
    public int NumHiddenLayers { get; private init; }
    public int NumAttentionHeads { get; private init; }

    /// <summary>num_key_value_heads, defaulting to <see cref="NumAttentionHeads"/> (no GQA).</summary>
    public int NumKeyValueHeads { get; private init; }

    /// <summary>head_dim when the config sets it (Qwen3 decouples it from hidden size), else hidden_size / heads.</summary>
    public int HeadDim { get; private init; }

    public int VocabSize { get; private init; }
    public double RmsNormEps { get; private init; }
    public int MaxPositionEmbeddings { get; private init; }

    /// <summary>True when lm_head shares the embedding matrix (the checkpoint then usually has no lm_head.weight).</summary>
    public bool TieWordEmbeddings { get; private init; }

    /// <summary>Whether q_proj, k_proj and v_proj carry a bias (always for Qwen2; attention_bias for Llama/Qwen3).</summary>
    public bool AttentionQkvBias { get; private init; }

    /// <summary>Whether o_proj carries a bias.</summary>
    public bool AttentionOutputBias { get; private init; }

    /// <summary>Whether gate/up/down_proj carry a bias (Llama's mlp_bias).</summary>
    public bool MlpBias { get; private init; }

    /// <summary>Per-head RMSNorm on queries and keys (Qwen3's q_norm / k_norm).</summary>
    public bool HasQkNorm => Spec.HasQkNorm;

    /// <summary>Mistral's attention window, null when unlimited.</summary>
    public int? SlidingWindow { get; private init; }

    public int? BosTokenId { get; private init; }

    /// <summary>eos_token_id, which may be one id or a list.</summary>
    public IReadOnlyList<int> EosTokenIds { get; private init; } = [];

    public int? PadTokenId { get; private init; }

    /// <summary>The checkpoint's dtype as transformers spells it ("bfloat16"), from "dtype" or the older "torch_dtype".</summary>
    public string? TorchDtype { get; private init; }

    public RopeConfig Rope { get; private init; } = new(RopeType.Default, RopeConfig.DefaultTheta);

    /// <summary>Query heads per key/value head.</summary>
    public int GroupSize => NumAttentionHeads / NumKeyValueHeads;

    /// <summary>Reads <c>config.json</c> from a model directory, or the given file.</summary>
    public static ModelConfig Load(string directoryOrFile)
    {
        var path = Directory.Exists(directoryOrFile) ? System.IO.Path.Combine(directoryOrFile, FileName) : directoryOrFile;
        if (!File.Exists(path))
            throw new ModelConfigException(path, "file not found");
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new ModelConfigException(path, $"not valid JSON: {e.Message}", e);
        }
        if (node is not JsonObject json)
            throw new ModelConfigException(path, "expected a JSON object");
        return Parse(json, path);
    }

    /// <summary>Interprets an already-parsed config; <paramref name="path"/> names it in errors.</summary>
    public static ModelConfig Parse(JsonObject json, string path)
    {
        var f = new ConfigFields(json, path);
        var spec = FindArchitecture(f);

        var hidden = f.RequiredPositiveInt("hidden_size");
        var heads = f.RequiredPositiveInt("num_attention_heads");
        var kvHeads = f.OptionalInt("num_key_value_heads") ?? heads;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw f.Error($"num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        var headDim = f.OptionalInt("head_dim") ?? (hidden % heads == 0
            ? hidden / heads
            : throw f.Error($"hidden_size {hidden} is not divisible by num_attention_heads {heads} and head_dim is not set"));
        if (headDim <= 0 || headDim % 2 != 0)
            throw f.Error($"head_dim {headDim} must be a positive even number (RoPE rotates pairs)");

        var activation = f.OptionalString("hidden_act") ?? "silu";
        if (activation != "silu")
            throw f.Error($"unsupported hidden_act '{activation}' (supported: silu)");

        var attentionBias = f.OptionalBool("attention_bias") ?? false;
        return new ModelConfig(path, json, spec)
        {
            HiddenSize = hidden,
            IntermediateSize = f.RequiredPositiveInt("intermediate_size"),
            NumHiddenLayers = f.RequiredPositiveInt("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = f.RequiredPositiveInt("vocab_size"),
            // 1e-6 is the default of all four transformers config classes.
            RmsNormEps = f.OptionalDouble("rms_norm_eps") ?? 1e-6,
            MaxPositionEmbeddings = f.RequiredPositiveInt("max_position_embeddings"),
            TieWordEmbeddings = f.OptionalBool("tie_word_embeddings") ?? false,
            AttentionQkvBias = Resolve(spec.QkvBias, attentionBias),
            AttentionOutputBias = Resolve(spec.OutputBias, attentionBias),
            MlpBias = spec.HonorsMlpBias && (f.OptionalBool("mlp_bias") ?? false),
            SlidingWindow = ReadSlidingWindow(f, spec),
            BosTokenId = f.OptionalInt("bos_token_id"),
            EosTokenIds = f.IntOrIntList("eos_token_id"),
            PadTokenId = f.OptionalInt("pad_token_id"),
            TorchDtype = f.OptionalString("dtype") ?? f.OptionalString("torch_dtype"),
            Rope = RopeConfig.Parse(f),
        };
    }

    /// <summary>The first supported entry of <c>architectures</c>, falling back to <c>model_type</c> when the list is absent.</summary>
    private static ArchitectureSpec FindArchitecture(ConfigFields f)
    {
        var names = f.StringList("architectures");
        foreach (var name in names)
        {
            if (ArchitectureSpec.FindByHfName(name) is { } spec)
                return spec;
        }
        var supported = string.Join(", ", ArchitectureSpec.All.Select(s => s.HfName));
        if (names.Count > 0)
            throw f.Error($"unsupported architecture {string.Join(", ", names)} (supported: {supported})");
        var modelType = f.OptionalString("model_type");
        if (modelType != null && ArchitectureSpec.FindByModelType(modelType) is { } byType)
            return byType;
        throw f.Error(modelType == null
            ? $"no 'architectures' or 'model_type' (supported: {supported})"
            : $"unsupported model_type '{modelType}' (supported: {supported})");
    }

    private static bool Resolve(BiasRule rule, bool attentionBias) => rule switch
    {
        BiasRule.Always => true,
        BiasRule.FromConfig => attentionBias,
        _ => false,
    };

    private static int? ReadSlidingWindow(ConfigFields f, ArchitectureSpec spec)
    {
        switch (spec.Architecture)
        {
            case ModelArchitecture.Mistral:
                return f.OptionalInt("sliding_window");
            case ModelArchitecture.Qwen2:
            case ModelArchitecture.Qwen3:
                // Qwen's window applies only to some layers (max_window_layers); rather than run it wrongly, refuse it.
                if (f.OptionalBool("use_sliding_window") == true)
                    throw f.Error("use_sliding_window = true is not supported");
                return null;
            default:
                return null;
        }
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
        $"{Spec.HfName}: {NumHiddenLayers} layers, hidden {HiddenSize}, heads {NumAttentionHeads}/{NumKeyValueHeads} × {HeadDim}, vocab {VocabSize}";
}
