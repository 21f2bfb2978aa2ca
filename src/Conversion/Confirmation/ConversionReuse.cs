using System.Text.Json.Nodes;
using Converter.Conversion.Pipeline;

namespace Converter.Conversion.Confirmation;

/// <summary>Where a conversion a confirmation needs stands in its output folder.</summary>
public enum ConversionState
{
    /// <summary>Nothing there yet: convert.</summary>
    Absent,

    /// <summary>A work folder with a checkpoint: resume it.</summary>
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
            var saved = ReadSettings(reportPath);
            foreach (var (key, value) in settled.FixedOnResume())
            {
                if (!saved.TryGetValue(key, out var was) || was != value)
                {
                    throw new IOException($"{reportPath}: a conversion with {key} '{was ?? "(none)"}', not '{value}'; refusing to replace it " +
                        "(remove it or choose another --confirm-out)");
                }
            }
            return ConversionState.Finished;
        }
        return new JobCheckpoint(settled.WorkDir).Exists ? ConversionState.Interrupted : ConversionState.Absent;
    }

    private static Dictionary<string, string> ReadSettings(string reportPath)
    {
        try
        {
            var settings = JsonNode.Parse(File.ReadAllText(reportPath))?["settings"] as JsonObject
                ?? throw new InvalidDataException($"{reportPath}: no settings object");
            return settings.ToDictionary(p => p.Key, p => p.Value?.GetValue<string>() ?? "");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{reportPath}: not a readable conversion report ({e.Message})");
        }
    }
}
