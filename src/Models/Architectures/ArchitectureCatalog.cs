using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>Every architecture we convert, and the lookup of a config.json's architecture among them.</summary>
public static class ArchitectureCatalog
{
    public static IReadOnlyList<ArchitectureDefinition> All { get; } =
    [
        LlamaFamily.Llama,
        LlamaFamily.Mistral,
        LlamaFamily.Qwen2,
        LlamaFamily.Qwen3,
        SmolLM3.Definition,
        Gemma.Gemma2,
        Gemma.Gemma3,
        Gemma3Multimodal.Definition,
        Phi3.Definition,
        Glm4.Definition,
        Olmo3.Definition,
        Cohere.Cohere1,
        Cohere.Cohere2,
        Mixtral.Definition,
        Qwen3Moe.Definition,
        Glm4Moe.Definition,
        GptOss.Definition,
        DeepseekV3.Definition,
    ];

    /// <summary>The first supported entry of <c>architectures</c>, falling back to <c>model_type</c> when the list is absent.</summary>
    public static ArchitectureDefinition Find(ModelConfig config)
    {
        foreach (var name in config.ArchitectureNames)
        {
            if (All.FirstOrDefault(a => a.HfName == name) is { } found)
                return found;
        }
        var supported = string.Join(", ", All.Select(a => a.HfName));
        if (config.ArchitectureNames.Count > 0)
            throw new ModelConfigException(config.Path, $"unsupported architecture {string.Join(", ", config.ArchitectureNames)} (supported: {supported})");
        if (config.ModelType != null && All.FirstOrDefault(a => a.ModelType == config.ModelType) is { } byType)
            return byType;
        throw new ModelConfigException(config.Path, config.ModelType == null
            ? $"no 'architectures' or 'model_type' (supported: {supported})"
            : $"unsupported model_type '{config.ModelType}' (supported: {supported})");
    }

    /// <summary>The forward's description of the model that <paramref name="config"/> declares.</summary>
    public static TransformerSpec Describe(ModelConfig config) => Find(config).Describe(config);
}
