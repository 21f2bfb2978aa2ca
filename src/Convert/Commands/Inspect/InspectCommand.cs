using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Eval.Inspection;
using Converter.Formats.Safetensors;
using Spectre.Console;

namespace Converter.Cli.Commands.Inspect;

/// <summary>`trellis inspect QUANT_DIR [--reference ORIG_DIR] [--json]`: which tensors cost what, and which hurt.</summary>
public sealed class InspectCommand
{
    private readonly Argument<string> _model = new("QUANT_DIR") { Description = "A converted (EXL3-layout) model directory" };
    private readonly Option<string?> _reference = new("--reference", "-r") { Description = "The original model: adds the relative reconstruction error ‖W − Ŵ‖/‖W‖ per tensor" };
    private readonly Option<bool> _json = new("--json") { Description = "Print {\"tensors\":[…], \"totals\":{…}} on stdout" };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("inspect",
            "Per-tensor report of a converted model: K, codebook, multiplier, padded shapes, bits per weight including the suh/svh scales, " +
            "the proxy error logged at conversion, and with --reference the reconstruction error against the original weights.");
        command.Arguments.Add(_model);
        command.Options.Add(_reference);
        command.Options.Add(_json);
        command.SetAction(parse => run(context => Execute(parse.GetValue(_model)!, parse.GetValue(_reference), parse.GetValue(_json), context)));
        return command;
    }

    public static int Execute(string modelDir, string? referenceDir, bool json, CliContext context)
    {
        using var quantized = CheckpointReader.Open(modelDir);
        using var reference = referenceDir is null ? null : ReferenceWeights.Open(modelDir, referenceDir);
        MultiplierWarning.Report("inspect", modelDir, context.Log);
        var proxies = ReadProxyErrors(modelDir);
        var rows = ModelInspection.Inspect(quantized, reference, proxies, context.Codebooks, new Progress<string>(_ => { }));
        var exl3 = rows.Where(r => r.Format == "exl3").ToList();
        double weights = exl3.Sum(r => (double)r.InFeatures * r.OutFeatures);
        var totals = new
        {
            exl3_tensors = exl3.Count,
            exl3_bits_per_weight = weights == 0 ? 0 : exl3.Sum(r => r.StoredBytes * 8.0) / weights,
            stored_bytes = rows.Sum(r => r.StoredBytes),
        };
        if (json)
        {
            JsonOutput.Write(context.Output, new { tensors = rows, totals });
            return ExitCodes.Ok;
        }
        var console = ResultConsole.Create(context);
        var table = new Table().Title($"{modelDir}").AddColumns("tensor", "format", "K", "codebook", "in × out", "padded", "bpw (+scales)", "proxy_err");
        if (reference is not null)
            table.AddColumn("‖W−Ŵ‖/‖W‖");
        foreach (var r in rows)
        {
            var cells = new List<string>
            {
                r.Name, r.Format, r.Bits?.ToString(CultureInfo.InvariantCulture) ?? "", r.Codebook is null ? "" : $"{r.Codebook} {r.Multiplier}",
                $"{r.InFeatures} × {r.OutFeatures}", r.PaddedIn is null ? "" : $"{r.PaddedIn} × {r.PaddedOut}",
                r.BitsPerWeight.ToString("0.000", CultureInfo.InvariantCulture), r.ProxyErr?.ToString("E3", CultureInfo.InvariantCulture) ?? "",
            };
            if (reference is not null)
                cells.Add(r.RelativeError?.ToString("0.00000", CultureInfo.InvariantCulture) ?? "");
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        console.Write(table);
        context.Output.WriteLine($"{totals.exl3_tensors} EXL3 tensors at {totals.exl3_bits_per_weight.ToString("0.000", CultureInfo.InvariantCulture)} bits per weight including scales; " +
            $"{HumanFormat.Bytes(totals.stored_bytes)} of 2-D tensors");
        return ExitCodes.Ok;
    }

    /// <summary>Proxy errors from our sidecar, when the model was converted here.</summary>
    private static Dictionary<string, double>? ReadProxyErrors(string modelDir)
    {
        var path = Path.Combine(modelDir, ConversionReport.FileName);
        if (!File.Exists(path))
            return null;
        try
        {
            var report = JsonSerializer.Deserialize<ConversionReport>(File.ReadAllText(path), ConversionReport.JsonOptions);
            return report?.Tensors.ToDictionary(t => t.Name, t => t.ProxyErr);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: unreadable conversion report ({e.Message})");
        }
    }
}
