using Converter.Conversion.Pipeline;
using Converter.Conversion.Pipeline.Allocation;
using Converter.Conversion.Reporting;

namespace Converter.Cli.Commands.Measure;

/// <summary>Behaviour of `trellis measure`: run the measurement, write the file, print the most sensitive units.</summary>
public static class MeasureRun
{
    public static int Execute((ConvertSettings Settings, MeasureOptions Options) args, bool json, CliContext context)
    {
        var (settings, options) = args;
        var measurement = new SensitivityMeasurement(settings, options, context.Conversion).Run();
        if (measurement is null)
            return ExitCodes.Ok;
        var dir = Path.GetDirectoryName(Path.GetFullPath(settings.OutDir));
        if (dir is not null)
            Directory.CreateDirectory(dir);
        measurement.Save(settings.OutDir);
        if (json)
        {
            JsonOutput.Write(context.Output, measurement);
            return ExitCodes.Ok;
        }
        int low = options.Candidates[0];
        context.Output.WriteLine($"Measured {measurement.Units.Count} units ({measurement.Granularity.Name()}) at K = {string.Join(", ", options.Candidates)} in " +
            $"{HumanFormat.Duration(TimeSpan.FromSeconds(measurement.Seconds))}; wrote {settings.OutDir}");
        context.Output.WriteLine($"Most sensitive at K = {low} (KL when the unit alone is quantized):");
        foreach (var u in measurement.Units.OrderByDescending(u => u.Kl[low]).Take(8))
            context.Output.WriteLine($"  {u.Label,-36} {string.Join("  ", u.Kl.Select(kv => $"K{kv.Key} {kv.Value:E2}"))}");
        context.Output.WriteLine($"Use it: trellis convert {settings.ModelDir} --bits B --measurement {settings.OutDir}");
        return ExitCodes.Ok;
    }
}
