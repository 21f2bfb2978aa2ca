using System.CommandLine;
using Converter.Cli.Commands.Eval;

namespace Converter.Cli.Commands.Ppl;

/// <summary>Definition and binding of `trellis ppl`; the work is in <see cref="PplRun"/>.</summary>
public sealed class PplCommand
{
    private readonly Argument<string> _model = new("MODEL_DIR") { Description = "A Hugging Face model (bf16/fp16/fp32) or a quantized (EXL3) model directory" };
    private readonly EvalDataOptions _data = new();

    private readonly Option<string?> _ids = new("--ids")
    {
        Description = "Score these exact token ids instead of a text: a JSON file with one array of ints (one row) or an array of " +
            "equal-length arrays (rows of at least 2 ids). No BOS is added; the softmax runs over the same vocabulary as for a text. " +
            "Excludes --text, --rows and --length",
    };

    private readonly Option<string?> _logitsOut = new("--logits-out")
    {
        Description = "Also write the float32 logits to this safetensors file as tensor 'logits', (rows, length, vocab), or " +
            "(length, vocab) for --ids with one flat array",
    };

    private readonly Option<bool> _json = new("--json")
    {
        Description = "Print {\"ppl\",\"rows\",\"length\",\"tokens\",\"scored\",\"vocabulary\",\"text\",\"ids\",\"logits_out\",…} as JSON on stdout",
    };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("ppl",
            "Perplexity of a model on consecutive rows of a text, or on exact token ids (--ids) (docs/exl3-format.md §6.2): " +
            "each row scored on its own, logits[:-1] against ids[1:].");
        command.Arguments.Add(_model);
        Option[] options = [.. _data.Options, _ids, _logitsOut, _json];
        foreach (var option in options)
            command.Options.Add(option);
        command.SetAction(parse => run(context => PplRun.Execute(Bind(parse), context)));
        return command;
    }

    public PplOptions Bind(ParseResult parse)
    {
        string model = parse.GetValue(_model)!;
        string? logitsOut = parse.GetValue(_logitsOut);
        if (parse.GetValue(_ids) is not { } ids)
        {
            var text = _data.Bind(parse);
            return new PplOptions(model, text, null, text.Device, logitsOut, parse.GetValue(_json), text.GpuMath);
        }
        var given = _data.GivenRowOptions(parse);
        if (given.Count > 0)
            throw new UsageException($"--ids cannot be combined with {string.Join(", ", given)}: the ids file gives the rows and their length");
        return new PplOptions(model, null, ids, _data.BindDevice(parse), logitsOut, parse.GetValue(_json), _data.BindGpuMath(parse));
    }
}
