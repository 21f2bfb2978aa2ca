using System.CommandLine;
using Converter.Cli.Commands.Eval;

namespace Converter.Cli.Commands.Ppl;

/// <summary>Definition and binding of `trellis ppl`; the work is in <see cref="PplRun"/>.</summary>
public sealed class PplCommand
{
    private readonly Argument<string> _model = new("MODEL_DIR") { Description = "A Hugging Face model (bf16/fp16/fp32) or a quantized (EXL3) model directory" };
    private readonly EvalDataOptions _data = new();
    private readonly Option<bool> _json = new("--json") { Description = "Print {\"ppl\",\"rows\",\"tokens\",…} as JSON on stdout" };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("ppl",
            "Perplexity of a model on consecutive rows of a text (EXL3-FORMAT.md §6.2): each row scored on its own, logits[:-1] against ids[1:].");
        command.Arguments.Add(_model);
        Option[] options = [.. _data.Options, _json];
        foreach (var option in options)
            command.Options.Add(option);
        command.SetAction(parse => run(context => PplRun.Execute(Bind(parse), context)));
        return command;
    }

    public PplOptions Bind(ParseResult parse) => new(parse.GetValue(_model)!, _data.Bind(parse), parse.GetValue(_json));
}
