namespace Converter.Eval.Codebooks.Confirmation;

/// <summary>
/// What the comparison measured for one variant's conversion against the original model: KL(A‖B) and top-1 agreement
/// of the logits (docs/exl3-format.md §6.1), and whether stock exllamav3 decodes the output as written.
/// </summary>
public sealed record ConfirmationMeasurement(ConfirmationVariant Variant, string Directory, double Kl, double Top1, bool Exllamav3CanDecode);
