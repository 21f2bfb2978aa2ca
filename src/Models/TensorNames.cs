namespace Converter.Models;

/// <summary>
/// Checkpoint names of a decoder's top-level modules: <c>{Model}.embed_tokens</c>, <c>{Model}.layers.N</c>,
/// <c>{Model}.norm</c> and the head. Text-only checkpoints put them under <c>model</c>; a multimodal wrapper's
/// language model sits deeper (e.g. <c>model.language_model</c>).
/// </summary>
public sealed record TensorNames(string Model, string LmHead)
{
    public static TensorNames Standard { get; } = new("model", "lm_head");

    public string Embedding => Model + ".embed_tokens";

    public string FinalNorm => Model + ".norm";

    public string Layer(int index) => $"{Model}.layers.{index}";

    public static string Weight(string module) => module + ".weight";

    public static string Bias(string module) => module + ".bias";
}
