namespace Converter.Regularize.Quantization;

/// <summary>How the global scale g of a linear is chosen (docs/exl3-format.md §3.5).</summary>
public enum ScaleChoice
{
    /// <summary>exllamav3's search: the plain MSE of encoding sampled tiles, without error feedback.</summary>
    TileMse,

    /// <summary>
    /// The tile-MSE scale and a few multiples of it, each run through the real LDLQ on a column sample and judged by
    /// the Hessian-weighted proxy error tr(EᵀHE)/tr(WᵀHW) (issue 13 part 3, an experiment).
    /// </summary>
    Proxy,
}
