using System.Text.Json.Nodes;
using Converter.Conversion.Pipeline;

namespace Converter.Conversion.Confirmation;

/// <summary>Where a conversion a confirmation needs stands in its output folder.</summary>
public enum ConversionState
{
    /// <summary>Nothing there yet: convert.</summary>
    Absent,

    /// <summary>A work folder with a checkpoint of a job with these settings: resume it.</summary>
    Interrupted,

    /// <summary>A finished conversion with exactly these settings: use it as it is.</summary>
    Finished,
}

/// <summary>
/// Decides whether a confirmation's conversion folder can be reused, so that a long confirmation picks up where it
/// stopped. A finished conversion is recognized by its report (<see cref="ConversionReport"/>, written inside the
/// output before the output is moved into place, so its presence means the conversion completed) recording the same
/// settings a resume must share; anything else in the folder is not ours to replace.
/// </summary>
public static class ConversionReuse
{
    /// <param name="settled">The conversion's settings with the calibration volume settled (<see cref="ConversionPipeline.Settle"/>).</param>
    /// <exception cref="IOException">The folder holds something other than this conversion.</exception>
    public static ConversionState Check(ConvertSettings settled)
    {
        var dir = settled.OutDir;
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
        {
            var reportPath = Path.Combine(dir, ConversionReport.FileName);
            if (!File.Exists(reportPath))
                throw new IOException($"{dir}: not empty and not a trellis conversion; refusing to replace it (remove it or choose another --confirm-out)");
            RequireSame(settled, reportPath, ReadSettings(reportPath, json => json["settings"]));
            return ConversionState.Finished;
        }
        if (!new JobCheckpoint(settled.WorkDir).Exists)
            return ConversionState.Absent;
        // The job's settings as it started, checked here so that a mismatch is refused before anything runs,
        // like a finished conversion's, rather than when the resume reaches it.
        var argsPath = Path.Combine(settled.WorkDir, ConversionPipeline.ArgsFileName);
        if (File.Exists(argsPath))
            RequireSame(settled, argsPath, ReadSettings(argsPath, json => json));
        return ConversionState.Interrupted;
    }

    private static void RequireSame(ConvertSettings settled, string path, IReadOnlyDictionary<string, string> saved)
    {
        if (settled.ResumeConflict(saved) is (var key, var was, var now))
        {
            throw new IOException($"{path}: a conversion with {key} '{was ?? "(none)"}', not {(now is null ? "the default" : $"'{now}'")}; " +
                "refusing to replace it (remove it or choose another --confirm-out)");
        }
    }

    private static Dictionary<string, string> ReadSettings(string path, Func<JsonNode, JsonNode?> settingsOf)
    {
        try
        {
            var settings = settingsOf(JsonNode.Parse(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path}: empty")) as JsonObject
                ?? throw new InvalidDataException($"{path}: no settings object");
            return settings.ToDictionary(p => p.Key, p => p.Value?.GetValue<string>() ?? "");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a readable conversion record ({e.Message})");
        }
    }
}
