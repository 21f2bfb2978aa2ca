using System.Globalization;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Codebooks.Confirmation;

/// <summary>
/// One conversion of a multiplier confirmation: the model converted with <paramref name="Codebook"/> (family and
/// multiplier) at conversion seed <paramref name="Seed"/> (sign flips and calibration rows).
/// </summary>
public sealed record ConfirmationVariant(CodebookSpec Codebook, int Seed)
{
    /// <summary>exllamav3's locked multiplier of the family: the baseline, and the only one stock exllamav3 decodes.</summary>
    public bool IsLocked => Codebook.IsDefaultMultiplier;

    /// <summary>
    /// The variant's folder under the confirmation's output folder, e.g. <c>mcg-0xCBAC1FED-2bpw-s0</c>: every setting
    /// that differs between variants or between confirmations at other bits is in the name, so a re-run finds its own.
    /// </summary>
    public string FolderName(double bits) =>
        $"{Codebook.Name}-{Codebook.MultiplierHex}-{bits.ToString("0.##", CultureInfo.InvariantCulture)}bpw-s{Seed.ToString(CultureInfo.InvariantCulture)}";
}
