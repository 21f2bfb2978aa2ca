namespace Converter.Eval.Codebooks.Confirmation;

/// <summary>
/// One multiplier of a confirmation over its conversion seeds: KL(A‖B) and top-1 agreement as mean (sd), and the
/// paired KL ratio against the locked multiplier at the same seed (what the seed changes, calibration rows and sign
/// flips, is shared by both sides of each ratio and largely cancels) with a 95% t interval over the seeds (null with
/// one seed, and for the locked row itself).
/// </summary>
public sealed record ConfirmationRow(
    string Codebook,
    string Multiplier,
    bool Locked,
    IReadOnlyList<int> Seeds,
    SampleSpread Kl,
    SampleSpread Top1,
    double KlRatio,
    double? KlRatioLow,
    double? KlRatioHigh,
    bool Exllamav3Runs);
