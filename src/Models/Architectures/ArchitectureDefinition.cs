using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>
/// One supported architecture: its transformers class name and model_type, and how its config.json becomes a
/// <see cref="TransformerSpec"/>. Everything else about it is the spec's data.
/// </summary>
public sealed record ArchitectureDefinition(string HfName, string ModelType, Func<ModelConfig, TransformerSpec> Describe);
