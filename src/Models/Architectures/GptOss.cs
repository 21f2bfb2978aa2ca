using Converter.Compute;
using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>
/// gpt-oss (modeling_gpt_oss.py): Llama-style pre-norm blocks with q/k/v/o biases and learned attention sinks
/// (<c>self_attn.sinks</c>, one softmax logit per head), sliding and full layers by layer_types, YaRN rope on halves;
/// every layer's MLP is a mixture of experts: the router <c>mlp.router</c> has a bias, takes the top-k logits and
/// softmaxes over them (the same weights as a full softmax renormalized over the chosen), and the experts are fused
/// 3-D tensors with biases (<see cref="MixtureOfExperts.FusedExperts"/>) running the clamped SwiGLU.
/// </summary>
internal static class GptOss
{
    public static ArchitectureDefinition Definition { get; } = new("GptOssForCausalLM", "gpt_oss", config =>
        DecoderFields.Base(config, "GptOssForCausalLM", Layers(config)) with
        {
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            OutputBias = DecoderFields.Flag(config, "attention_bias"),
            AttentionSinks = true,
            Activation = ClampedSwiGlu(config),
            Moe = new MixtureOfExperts
            {
                // GptOssTopKRouter: softmax over the top-k of logits + bias, i.e. the full softmax renormalized over
                // the chosen experts.
                Router = DecoderFields.Router(config, "num_local_experts", RouterScoring.Softmax, normalizeTopK: true),
                ExpertIntermediateSize = config.IntermediateSize,
                SparseLayers = Enumerable.Repeat(true, config.NumHiddenLayers).ToArray(),
                Module = "mlp",
                RouterModule = "router",
                RouterBias = true,
                FusedExperts = true,
            },
        });

    /// <summary>GptOssConfig: layer_types default to sliding on even layers; every layer has the one (YaRN) rope.</summary>
    private static IReadOnlyList<LayerAttention> Layers(ModelConfig config)
    {
        var sliding = DecoderFields.SlidingLayers(config) ?? Enumerable.Range(0, config.NumHiddenLayers).Select(i => i % 2 == 0).ToArray();
        int? window = sliding.Any(s => s) ? DecoderFields.Window(config) : null;
        var rope = RopeConfig.Parse(config.Fields);
        return sliding.Select(s => new LayerAttention(s ? window : null, rope)).ToArray();
    }

    /// <summary>
    /// The experts' activation is hard-coded (hidden_act says "silu"): the clamped SwiGLU with the limit of
    /// swiglu_limit, which we implement at the released 7.0 only.
    /// </summary>
    private static MlpActivation ClampedSwiGlu(ModelConfig config)
    {
        double limit = config.Fields.OptionalDouble("swiglu_limit") ?? GatedActivation.ClampedSwiGluLimit;
        if (limit != GatedActivation.ClampedSwiGluLimit)
            throw config.Fields.Error($"swiglu_limit {limit} is not supported (gpt-oss's clamped SwiGLU is implemented for {GatedActivation.ClampedSwiGluLimit})");
        return MlpActivation.ClampedSwiGlu;
    }
}
