using Converter.Regularize.Hessian;

namespace Converter.Regularize.Quantization;

/// <summary>
/// The quantizer's experimental knobs (issue 13 part 3): how g is chosen, refinement passes after LDLQ, the scale refit, the
/// Hessian damping, the drift-aware target and the sequential capture. <see cref="Exllamav3"/> is exllamav3's quantizer, which a
/// conversion's records describe any other value against; <see cref="Default"/> is ours.
/// </summary>
public sealed record QuantizerTuning
{
    /// <summary>exllamav3's quantizer as it is (`convert --fast`).</summary>
    public static QuantizerTuning Exllamav3 { get; } = new();

    /// <summary>
    /// What `trellis convert` does unless told otherwise: the drift target at α = 1 with the sequential capture, 16–23%
    /// below <see cref="Exllamav3"/>'s KL on tiny-llama and 13–20% on small-qwen2 at 2–4 bpw (0.77–0.87× exllamav3's
    /// figures), for 1.46× (128 × 512) to 1.60× (250 × 2048) its time per 8B layer on an H200 and 1.75× tiny-llama's on
    /// a CPU (docs/benchmarks.md, "Sequential capture with the drift target").
    /// </summary>
    public static QuantizerTuning Default { get; } = new() { DriftTarget = 1, SequentialCapture = true };

    public ScaleChoice ScaleChoice { get; init; } = ScaleChoice.TileMse;

    /// <summary>Coordinate-descent passes over the 16-row blocks after LDLQ (<see cref="ProxyRefinement"/>); 0 = none.</summary>
    public int RefinePasses { get; init; }

    /// <summary>Refit suh and svh to the chosen codes by least squares on the proxy error (<see cref="ScaleRefit"/>).</summary>
    public bool RefitScales { get; init; }

    /// <summary>σ of the Hessian damping σ·mean(diag) (§3.2).</summary>
    public double Damping { get; init; } = GroupHessian.DefaultSigma;

    /// <summary>
    /// Strength α of the drift-aware target (<see cref="DriftCorrection"/>): each linear quantizes
    /// T = W + α·W·Cᵀ·H⁻¹ so that the quantized model's outputs match the original model's, not the original weight's
    /// on the quantized stream; 0 = off (quantize W, exllamav3's). Needs the original model's stream beside the quantized one.
    /// </summary>
    public double DriftTarget { get; init; }

    /// <summary>
    /// Capture a block's Hessians one sublayer at a time, each after the sublayers before it are quantized (GPTQ's "true
    /// sequential" order): o_proj's from the attention of the quantized q/k/v, the MLP's from the quantized attention,
    /// down_proj's from the quantized gate/up. Off: one capture of the whole block before any linear is quantized
    /// (exllamav3's).
    /// </summary>
    public bool SequentialCapture { get; init; }

    /// <summary>The knobs that differ from exllamav3's quantizer as key/value pairs, for records and the resume check.</summary>
    public IReadOnlyDictionary<string, string> Describe()
    {
        var d = new SortedDictionary<string, string>();
        if (ScaleChoice != Exllamav3.ScaleChoice)
            d["scale_choice"] = ScaleChoice == ScaleChoice.Proxy ? "proxy" : "tile-mse";
        if (RefinePasses != Exllamav3.RefinePasses)
            d["refine_passes"] = RefinePasses.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (RefitScales != Exllamav3.RefitScales)
            d["refit_scales"] = RefitScales ? "true" : "false";
        if (Damping != Exllamav3.Damping)
            d["damping"] = Damping.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (DriftTarget != Exllamav3.DriftTarget)
            d["drift_target"] = DriftTarget.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (SequentialCapture != Exllamav3.SequentialCapture)
            d["sequential_capture"] = SequentialCapture ? "true" : "false";
        return d;
    }
}
