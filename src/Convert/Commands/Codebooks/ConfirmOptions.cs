using Converter.Conversion.Confirmation;
using Converter.Trellis.Codebooks;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>
/// Bound arguments of `trellis codebooks --confirm MODEL_DIR`: what every conversion shares, the family, the seeds,
/// and the multipliers: the screen's top <paramref name="Top"/> when a screen runs first, else <paramref name="Multipliers"/>.
/// </summary>
public sealed record ConfirmOptions(ConfirmationSettings Settings, CodebookKind Kind, IReadOnlyList<int> Seeds, int? Top, IReadOnlyList<uint> Multipliers);
