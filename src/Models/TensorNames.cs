namespace Converter.Models;

/// <summary>
/// Hugging Face parameter names of the Llama-family checkpoints. All four supported architectures use the same
/// names (modeling_llama/mistral/qwen2/qwen3.py), so one table serves them all.
/// </summary>
public static class TensorNames
{
    public const string Embedding = "model.embed_tokens";
    public const string FinalNorm = "model.norm";
    public const string LmHead = "lm_head";

    public static string Layer(int index) => $"model.layers.{index}";

    public static string Weight(string module) => module + ".weight";

    public static string Bias(string module) => module + ".bias";
}
