using Converter.Cli.Commands.Eval;

namespace Converter.Cli.Commands.Ppl;

/// <summary>Bound and validated arguments of `trellis ppl`.</summary>
public sealed record PplOptions(string ModelDir, EvalData Data, bool Json);
