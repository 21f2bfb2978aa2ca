using System.CommandLine;

namespace Converter.Cli.Commands.Eval;

/// <summary>Definition and binding of `trellis eval`; the work is in <see cref="EvalRun"/>.</summary>
public sealed class EvalCommand
{
    public const int MaxTopK = 100;

    private readonly Argument<string> _quant = new("QUANT_DIR") { Description = "The model to test (A): a quantized model directory, or any model of the same architecture" };
    private readonly Option<string> _reference = new("--reference", "-r") { Description = "The original model (B) to compare against", Required = true };
    private readonly EvalDataOptions _data = new();
    private readonly Option<int> _topK = new("--topk") { Description = $"Largest K of label-in-top-K and top-K agreement, 1..{MaxTopK}", DefaultValueFactory = _ => 5 };
    private readonly Option<string?> _report = new("--report") { Description = "Write a self-contained HTML report with charts to this file" };
    private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object on stdout instead of tables" };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("eval",
            "Compare a quantized model with its original as exllamav3's model_diff does (docs/exl3-format.md §6.1): both run module by module " +
            "on the same rows; per-module error (rfn_err, max_diff/norm, SQNR, cos_err), then perplexity of each, label-in-top-K, " +
            "top-K agreement, KL divergence both ways with median, p90 and buckets by the reference's confidence.");
        command.Arguments.Add(_quant);
        Option[] options = [_reference, .. _data.Options, _topK, _report, _json];
        foreach (var option in options)
            command.Options.Add(option);
        command.SetAction(parse => run(context => EvalRun.Execute(Bind(parse), context)));
        return command;
    }

    public EvalOptions Bind(ParseResult parse)
    {
        var data = _data.Bind(parse);
        return new EvalOptions(parse.GetValue(_quant)!, parse.GetValue(_reference)!, data, BindTopK(parse, _topK), parse.GetValue(_report), parse.GetValue(_json));
    }

    /// <summary>--topk for eval and compare.</summary>
    public static int BindTopK(ParseResult parse, Option<int> option)
    {
        int k = parse.GetValue(option);
        if (k is < 1 or > MaxTopK)
            throw new UsageException($"--topk must be in 1..{MaxTopK}, got {k}");
        return k;
    }
}
