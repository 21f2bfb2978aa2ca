using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;

namespace Converter.Models.Architectures;

/// <summary>
/// Picks, among the name layouts an architecture's checkpoints come in, the one the checkpoint beside config.json
/// holds: the declaration sees only the config, and the names are the checkpoint's. Only the index or the header is
/// read.
/// </summary>
internal static class CheckpointLayout
{
    /// <summary>
    /// The first of <paramref name="layouts"/> whose embedding tensor the checkpoint holds. A config without a
    /// checkpoint beside it (described before any weights exist) gets the first layout, the one exllamav3 reads.
    /// </summary>
    public static TensorNames Choose(ModelConfig config, params TensorNames[] layouts)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(config.Path))!;
        var names = CheckpointReader.ReadTensorNames(directory);
        if (names is null)
            return layouts[0];
        var present = names.ToHashSet(StringComparer.Ordinal);
        return layouts.FirstOrDefault(l => present.Contains(TensorNames.Weight(l.Embedding)))
            ?? throw new SafetensorsFormatException(directory,
                $"the checkpoint holds none of {string.Join(", ", layouts.Select(l => TensorNames.Weight(l.Embedding)))}, the embedding of a {config.ArchitectureNames.FirstOrDefault() ?? config.ModelType} checkpoint");
    }
}
