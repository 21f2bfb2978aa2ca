using Converter.Cli.Commands.Eval;

namespace Converter.Cli.Commands.Compare;

/// <summary>Bound and validated arguments of `trellis compare`.</summary>
public sealed record CompareOptions(IReadOnlyList<string> QuantDirs, string ReferenceDir, EvalData Data, int TopK, string? ReportPath, bool Json);
