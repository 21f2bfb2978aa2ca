using System.CommandLine;
using Converter.Cli.Commands.Eval;

namespace Converter.Cli.Commands.Compare;

/// <summary>Definition and binding of `trellis compare`; the work is in <see cref="CompareRun"/>.</summary>
public sealed class CompareCommand
{
    private readonly Argument<string[]> _quants = new("QUANT_DIR") { Description = "Quantized variants of the reference model", Arity = ArgumentArity.OneOrMore };
    private readonly Option<string> _reference = new("--reference", "-r") { Description = "The original model all variants are compared against", Required = true };
    private readonly EvalDataOptions _data = new();
    private readonly Option<int> _topK = new("--topk") { Description = $"Largest K of top-K agreement, 1..{EvalCommand.MaxTopK}", DefaultValueFactory = _ => 5 };
    private readonly Option<string?> _report = new("--report") { Description = "Write a self-contained HTML report with charts to this file" };
    private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object on stdout instead of the table" };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("compare",
            "Evaluate several quantized variants of one model on the same rows (the reference runs once) and tabulate bits, codebook, " +
            "KL divergence, top-1/top-K agreement and perplexity.");
        command.Arguments.Add(_quants);
        Option[] options = [_reference, .. _data.Options, _topK, _report, _json];
        foreach (var option in options)
            command.Options.Add(option);
        command.SetAction(parse => run(context => CompareRun.Execute(Bind(parse), context)));
        return command;
    }

    public CompareOptions Bind(ParseResult parse)
    {
        var data = _data.Bind(parse);
        var quants = parse.GetValue(_quants) ?? [];
        if (quants.Length == 0)
            throw new UsageException("compare needs at least one QUANT_DIR");
        return new CompareOptions(quants, parse.GetValue(_reference)!, data, EvalCommand.BindTopK(parse, _topK), parse.GetValue(_report), parse.GetValue(_json));
    }
}
