namespace Converter.Cli.Commands.Convert;

/// <summary>
/// Finds the repository's samples/ folder (the sample model and texts the defaults use) by walking up from the
/// working directory and from the executable, so `./trellis convert` works from anywhere in a checkout.
/// </summary>
public static class SampleLocator
{
    public const string SampleModel = "tiny-llama";

    public static string? FindSamples()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "samples");
                if (File.Exists(Path.Combine(candidate, SampleModel, "config.json")))
                    return candidate;
            }
        }
        return null;
    }

    public static string Require(string what) => FindSamples()
        ?? throw new UsageException($"no {what} given and the sample folder (samples/{SampleModel}) was not found above the current directory");
}
