using Converter.Conversion.Reporting;
using Converter.Trellis.Codebooks;

namespace Converter.Conversion;

/// <summary>
/// What a conversion, measurement or allocation check reports to and shares across its stages: the log (progress and
/// diagnostics, never results), how progress is shown, and the codebook tables built once per run. The CLI makes one
/// per command; a library caller makes its own (<see cref="LogOnly"/> for plain log lines).
/// </summary>
public sealed class ConversionSession(TextWriter log, IProgressDisplay progress)
{
    public TextWriter Log { get; } = log;

    public IProgressDisplay Progress { get; } = progress;

    public CodebookTableCache Codebooks { get; } = new();

    public static ConversionSession LogOnly(TextWriter log) => new(log, new LogLineProgress(log));
}
