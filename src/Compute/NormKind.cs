namespace Converter.Compute;

/// <summary>The normalizations decoder architectures use; all compute in float32 as transformers does for its float32 reference.</summary>
public enum NormKind
{
    /// <summary>LlamaRMSNorm: x / √(mean(x²) + eps) ⊙ w.</summary>
    Rms,

    /// <summary>GemmaRMSNorm: x / √(mean(x²) + eps) ⊙ (1 + w); the checkpoint stores w, initialized at zero.</summary>
    RmsUnitOffset,

    /// <summary>LayerNorm: (x − mean) / √(var + eps) ⊙ w (+ b when the layer has a bias; Cohere's has none).</summary>
    Layer,
}
