namespace Converter.Regularize.Quantization;

/// <summary>
/// A linear regularized and scaled, ready for LDLQ (<see cref="LinearQuantizer.Prepare"/>): its transposed padded
/// weight W (k, n) with the output side applied, the target Wr = W scaled by su and rotated, and the scales.
/// </summary>
/// <param name="Su0">Input scales before the global scale (the proxy choice and the refit start from them).</param>
/// <param name="Suh">Input scales with the global scale folded in, rounded to fp16 as stored.</param>
/// <param name="Svh">Output scales as stored.</param>
/// <param name="InputSigns">The group Hessian's input sign flips the input side used.</param>
public sealed record PreparedLinear(string Name, int InFeatures, int OutFeatures, float[] Transposed, float[] Target, float[] Su0, float[] Suh, float[] Svh,
    double GlobalScale, bool OutScales, float[] InputSigns, double RegularizeSeconds, double SearchSeconds);
