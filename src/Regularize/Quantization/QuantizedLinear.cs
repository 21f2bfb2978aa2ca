using Converter.Trellis.Codebooks;

namespace Converter.Regularize.Quantization;

/// <summary>
/// One linear layer in EXL3 form (docs/exl3-format.md §4.1) plus what the converter learned doing it. Dimensions k/n are
/// the padded input/output widths; <see cref="Suh"/> and <see cref="Svh"/> hold exactly the fp16 values stored.
/// </summary>
public sealed record QuantizedLinear
{
    public required string Name { get; init; }
    public required int Bits { get; init; }
    public required CodebookSpec Codebook { get; init; }
    public required int InFeatures { get; init; }
    public required int OutFeatures { get; init; }
    public required int PaddedIn { get; init; }
    public required int PaddedOut { get; init; }

    /// <summary>Packed states, int16 (k/16, n/16, 16·K) row-major (§2.6).</summary>
    public required short[] Trellis { get; init; }

    /// <summary>
    /// LDLQ's Q: Ŵ (k, n) row-major, each value the codebook's at its state, which is what decoding
    /// <see cref="Trellis"/> gives (§4.3); kept so a reconstruction need not decode (an 8B MLP linear's 59M values took
    /// ~0.35 s of a core). Null where it was not kept.
    /// </summary>
    public float[]? Decoded { get; init; }

    /// <summary>
    /// The reconstruction (the HF weight Q decodes to, §4.3) made on the device that held Q
    /// (<see cref="LinearTarget.Reconstruction"/>), owned by whoever takes it from here; <see cref="Decoded"/>'s array
    /// may then take the weight's values (Q is not read again). Only where the caller asked for it
    /// (<see cref="LinearQuantizer.QuantizeHeld"/>).
    /// </summary>
    public Compute.IResidentWeight? Resident { get; init; }

    public required float[] Suh { get; init; }
    public required float[] Svh { get; init; }
    public float[]? Bias { get; init; }

    /// <summary>tr(EᵀH'E)/tr(WrᵀH'Wr) (§3.7), or the RMSE of the regularized weights when there was no Hessian.</summary>
    public required double ProxyError { get; init; }

    /// <summary>With <see cref="QuantizerTuning.RefitScales"/>: the true proxy error (original basis, svh included) before the refit; <see cref="ProxyError"/> is then the one after.</summary>
    public double? ProxyBeforeRefit { get; init; }

    /// <summary>True when <see cref="ProxyError"/> is an RMSE (fallback without Hessian).</summary>
    public bool ProxyIsRmse { get; init; }

    /// <summary>Global scale g chosen by the search (§3.5).</summary>
    public required double GlobalScale { get; init; }

    public required bool OutScalesApplied { get; init; }

    /// <summary>Why LDLQ ran without error feedback, or null when it had a usable Hessian.</summary>
    public string? Fallback { get; init; }

    /// <summary>Diagonal raises Cholesky needed (§3.6).</summary>
    public int CholeskyRetries { get; init; }

    /// <summary>Wall time of the regularization before the search: transpose, sign flips, scales, rotations (§3.3).</summary>
    public double RegularizeSeconds { get; init; }

    /// <summary>Wall time of the scale search (sampling, 15 trial encodes; with <see cref="ScaleChoice.Proxy"/> also its LDLQ trials).</summary>
    public double ScaleSearchSeconds { get; init; }

    /// <summary>Wall time of the Hessian's rotation into the quantized basis and its block LDL (§3.4, §3.6).</summary>
    public double FactorSeconds { get; init; }

    /// <summary>Wall time of LDLQ itself (§3.7: the Viterbi encodes and the feedback), and of the refinement passes (<see cref="ProxyRefinement"/>).</summary>
    public double LdlqSeconds { get; init; }

    /// <summary>Wall time after LDLQ: bit packing, the proxy error and the scale refit (<see cref="QuantizerTuning.RefitScales"/>).</summary>
    public double FinishSeconds { get; init; }
}
