namespace Converter.Models;

/// <summary>
/// Checkpoint names of a decoder's top-level modules: <c>{Model}.embed_tokens</c>, <c>{Model}.layers.N</c>,
/// <c>{Model}.norm</c> and the head. Text-only checkpoints put them under <c>model</c>; a multimodal wrapper's
/// language model sits deeper (e.g. <c>language_model.model</c>). These are the names the source is read under;
/// <see cref="Written"/> gives the names the converter writes.
/// </summary>
public sealed record TensorNames(string Model, string LmHead)
{
    public static TensorNames Standard { get; } = new("model", "lm_head");

    /// <summary>
    /// Prefixes renamed in every tensor the converter writes, for a source whose layout is not the one exllamav3 reads
    /// (Gemma 3 saved by transformers ≥ 4.52); the first that matches applies. Empty: names are written as read.
    /// </summary>
    public IReadOnlyList<PrefixRename> WrittenRenames { get; init; } = [];

    public string Embedding => Model + ".embed_tokens";

    public string FinalNorm => Model + ".norm";

    public string Layer(int index) => $"{Model}.layers.{index}";

    /// <summary>The name a source tensor (or module) is written under in the converted model.</summary>
    public string Written(string name)
    {
        foreach (var rename in WrittenRenames)
        {
            if (rename.Apply(name) is { } renamed)
                return renamed;
        }
        return name;
    }

    public static string Weight(string module) => module + ".weight";

    public static string Bias(string module) => module + ".bias";
}

/// <summary>Replaces the leading dotted components <paramref name="From"/> of a name by <paramref name="To"/>.</summary>
public sealed record PrefixRename(string From, string To)
{
    /// <summary>The renamed name, or null when <paramref name="name"/> does not start with the whole components of <see cref="From"/>.</summary>
    public string? Apply(string name) =>
        name == From ? To
        : name.StartsWith(From, StringComparison.Ordinal) && name.Length > From.Length && name[From.Length] == '.' ? To + name[From.Length..]
        : null;
}
