using System.Globalization;

namespace Converter.Cli.Commands.Convert;

/// <summary>The command line's rules for bit widths, shared by convert and the codebooks' confirmation step.</summary>
public static class BitWidths
{
    /// <summary>A target bits per weight (<paramref name="option"/>: --bits, --confirm-bits): 1..8, fractions allowed.</summary>
    public static double Target(double bits, string option) =>
        bits is >= 1 and <= 8 ? bits : throw new UsageException($"{option} must be in 1..8, got {bits.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>--head-bits: a trellis K of 1..8, or 16 for an fp16 head.</summary>
    public static int Head(int headBits) =>
        headBits is (>= 1 and <= 8) or 16 ? headBits : throw new UsageException($"--head-bits must be 1..8 or 16, got {headBits}");
}
