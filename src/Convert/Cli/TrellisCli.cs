using System.CommandLine;
using Converter.Cli.Commands.Bench;
using Converter.Cli.Commands.Codebooks;
using Converter.Cli.Commands.Compare;
using Converter.Cli.Commands.Convert;
using Converter.Cli.Commands.Eval;
using Converter.Cli.Commands.Inspect;
using Converter.Cli.Commands.Measure;
using Converter.Cli.Commands.Ppl;
using Converter.Cli.Commands.Synth;
using Converter.Conversion;
using Converter.Formats.Safetensors;

namespace Converter.Cli;

/// <summary>
/// The `trellis` command tree and its one error policy: parse errors and invalid values exit 2 with a one-line
/// message, failures of the work (bad files, I/O) exit 1 with a one-line message naming the culprit.
/// </summary>
public sealed class TrellisCli
{
    private readonly CliContext _context;

    public TrellisCli(CliContext context)
    {
        _context = context;
        Root = new RootCommand("trellis: convert Hugging Face language models to EXL3 trellis-coded weights, and measure what was lost.");
        Root.Subcommands.Add(Convert.Build(Guarded));
        Root.Subcommands.Add(new InspectCommand().Build(Guarded));
        Root.Subcommands.Add(Eval.Build(Guarded));
        Root.Subcommands.Add(Measure.Build(Guarded));
        Root.Subcommands.Add(Ppl.Build(Guarded));
        Root.Subcommands.Add(Compare.Build(Guarded));
        Root.Subcommands.Add(Codebooks.Build(Guarded));
        Root.Subcommands.Add(new SynthCommand().Build(Guarded));
        Root.Subcommands.Add(new BenchCommand().Build(Guarded));
    }

    public RootCommand Root { get; }

    public CodebooksCommand Codebooks { get; } = new();

    public ConvertCommand Convert { get; } = new();

    public EvalCommand Eval { get; } = new();

    public MeasureCommand Measure { get; } = new();

    public PplCommand Ppl { get; } = new();

    public CompareCommand Compare { get; } = new();

    public ParseResult Parse(params string[] args) => Root.Parse(args);

    public int Invoke(params string[] args)
    {
        var parse = Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
                _context.Log.WriteLine($"trellis: {error.Message}");
            _context.Log.WriteLine("Run 'trellis --help' (or 'trellis COMMAND --help') for usage.");
            return ExitCodes.Usage;
        }
        return parse.Invoke(new InvocationConfiguration { Output = _context.Output, Error = _context.Log });
    }

    /// <summary>Runs a command body under the error policy.</summary>
    private int Guarded(Func<CliContext, int> body)
    {
        try
        {
            return body(_context);
        }
        catch (Exception e) when (e is UsageException or Conversion.InvalidSettingsException)
        {
            _context.Log.WriteLine($"trellis: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is SafetensorsFormatException or IOException or UnauthorizedAccessException or InvalidDataException
            or Formats.HuggingFace.ModelConfigException or Formats.Tokenizers.TokenizerFormatException or Cuda.CudaException
            or Conversion.Pipeline.ResourceShortfallException)
        {
            _context.Log.WriteLine($"trellis: error: {e.Message}");
            return ExitCodes.Failure;
        }
        catch (Exception e)
        {
            // A bug, not bad input: say so, with the stack for the report, and still exit 1.
            _context.Log.WriteLine($"trellis: internal error: {e.GetType().Name}: {e.Message}");
            _context.Log.WriteLine(e.StackTrace);
            return ExitCodes.Failure;
        }
    }
}
