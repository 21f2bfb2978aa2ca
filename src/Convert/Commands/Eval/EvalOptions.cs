namespace Converter.Cli.Commands.Eval;

/// <summary>Bound and validated arguments of `trellis eval`.</summary>
public sealed record EvalOptions(string QuantDir, string ReferenceDir, EvalData Data, int TopK, string? ReportPath, bool Json);
