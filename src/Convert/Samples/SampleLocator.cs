using Converter.Conversion.Samples;

namespace Converter.Cli.Samples;

/// <summary>
/// Finds the sample model of a clone of the repository (samples/tiny-llama), the default MODEL_DIR of `convert`, by
/// walking up from the working directory and from the executable, so `./trellis convert` works from anywhere in a
/// checkout. Only the model is looked up on disk: the texts and tokenizer the defaults need are built in
/// (<see cref="BuiltInSamples"/>), and an installed tool is given its model.
/// </summary>
public static class SampleLocator
{
    public const string SampleModel = BuiltInSamples.SampleModel;

    public static string? FindSampleModel()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "samples", SampleModel);
                if (File.Exists(Path.Combine(candidate, "config.json")))
                    return candidate;
            }
        }
        return null;
    }

    public static string RequireSampleModel() => FindSampleModel()
        ?? throw new UsageException($"no MODEL_DIR given, and the sample model (samples/{SampleModel} of a clone of the repository) was not found above the current directory");
}
