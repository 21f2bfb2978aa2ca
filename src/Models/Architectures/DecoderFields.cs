using Converter.Compute;
using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>Config readings that several architectures' declarations share.</summary>
internal static class DecoderFields
{
    /// <summary>
    /// A spec with the fields every architecture reads the same way: sizes from <see cref="ModelConfig"/>, full
    /// rotary, pre-norm RMSNorm blocks, SiLU; the declaration overrides what its architecture changes.
    /// </summary>
    public static TransformerSpec Base(ModelConfig config, string hfName, IReadOnlyList<LayerAttention> layers, string epsKey = "rms_norm_eps") => new()
    {
        ArchitectureName = hfName,
        HiddenSize = config.HiddenSize,
        IntermediateSize = config.IntermediateSize,
        Layers = config.NumHiddenLayers,
        Heads = config.NumAttentionHeads,
        KvHeads = config.NumKeyValueHeads,
        HeadDim = config.HeadDim,
        VocabSize = config.VocabSize,
        // 1e-6 is the default of the Llama-family config classes; HF adds eps to a float32 variance.
        NormEps = (float)(config.Fields.OptionalDouble(epsKey) ?? 1e-6),
        RotaryDims = RotaryDims(config),
        LayerAttention = layers,
        TiedEmbeddings = config.TieWordEmbeddings,
    };

    /// <summary>Every layer alike: the given window and the config's rope.</summary>
    public static IReadOnlyList<LayerAttention> Uniform(ModelConfig config, int? window) =>
        Enumerable.Repeat(new LayerAttention(window, RopeConfig.Parse(config.Fields)), config.NumHiddenLayers).ToArray();

    /// <summary>Head dimensions that rotate: head_dim · partial_rotary_factor, even.</summary>
    public static int RotaryDims(ModelConfig config)
    {
        double factor = RopeConfig.PartialRotaryFactor(config.Fields);
        int dims = (int)(config.HeadDim * factor);
        if (dims <= 0 || dims % 2 != 0)
            throw config.Fields.Error($"partial_rotary_factor {factor} of head_dim {config.HeadDim} gives {dims} rotary dimensions, expected a positive even number");
        return dims;
    }

    /// <summary>The MLP activation named by <paramref name="key"/> (transformers' ACT2FN names we implement).</summary>
    public static MlpActivation Activation(ModelConfig config, string key, string fallback)
    {
        var name = config.Fields.OptionalString(key) ?? fallback;
        return name switch
        {
            "silu" or "swish" => MlpActivation.Silu,
            "gelu_pytorch_tanh" or "gelu_new" => MlpActivation.GeluTanh,
            _ => throw config.Fields.Error($"unsupported {key} '{name}' (supported: silu, gelu_pytorch_tanh)"),
        };
    }

    /// <summary>
    /// <c>layer_types</c> ("full_attention" / "sliding_attention" per layer), or null when absent; other entries
    /// and a wrong length are refused.
    /// </summary>
    public static IReadOnlyList<bool>? SlidingLayers(ModelConfig config)
    {
        var types = config.Fields.Has("layer_types") ? config.Fields.StringList("layer_types") : null;
        if (types == null)
            return null;
        if (types.Count != config.NumHiddenLayers)
            throw config.Fields.Error($"layer_types has {types.Count} entries for {config.NumHiddenLayers} layers");
        return types.Select(t => t switch
        {
            "full_attention" => false,
            "sliding_attention" => true,
            _ => throw config.Fields.Error($"unsupported layer type '{t}' in layer_types (supported: full_attention, sliding_attention)"),
        }).ToArray();
    }

    /// <summary>sliding_window, required positive when a layer slides.</summary>
    public static int Window(ModelConfig config)
    {
        var window = config.Fields.OptionalInt("sliding_window")
            ?? throw config.Fields.Error("layers slide but 'sliding_window' is not set");
        return window > 0 ? window : throw config.Fields.Error($"sliding_window is {window}, expected a positive integer");
    }

    public static bool Flag(ModelConfig config, string key) => config.Fields.OptionalBool(key) ?? false;

    /// <summary>A router over the experts counted by <paramref name="expertsKey"/>, choosing num_experts_per_tok of them.</summary>
    public static RouterSpec Router(ModelConfig config, string expertsKey, RouterScoring scoring, bool normalizeTopK, float scale = 1f, float normEpsilon = 0f)
    {
        int experts = config.Fields.RequiredCount(expertsKey, ModelConfig.MaxCount);
        int topK = config.Fields.RequiredPositiveInt("num_experts_per_tok");
        if (topK > experts)
            throw config.Fields.Error($"num_experts_per_tok is {topK}, more than the {experts} experts of '{expertsKey}'");
        return new RouterSpec(experts, topK, scoring, normalizeTopK, scale, normEpsilon);
    }

    /// <summary>
    /// n_group / topk_group (DeepSeek-V3, GLM-4.5), both 1 when absent: experts must split into equal groups of at
    /// least two (transformers ranks a group by its two best experts) and enough groups kept to hold the top k.
    /// </summary>
    public static RouterSpec WithGroups(ModelConfig config, RouterSpec router)
    {
        int groups = config.Fields.OptionalInt("n_group") ?? 1, kept = config.Fields.OptionalInt("topk_group") ?? groups;
        if (groups <= 0 || router.Experts % groups != 0 || (groups > 1 && router.Experts / groups < 2))
            throw config.Fields.Error($"n_group is {groups}, which does not split the {router.Experts} experts into equal groups of at least 2");
        if (kept <= 0 || kept > groups || (long)kept * (router.Experts / groups) < router.TopK)
            throw config.Fields.Error($"topk_group is {kept}, expected 1..{groups} groups holding at least num_experts_per_tok {router.TopK} experts");
        return router with { Groups = groups, TopKGroups = kept };
    }
}
