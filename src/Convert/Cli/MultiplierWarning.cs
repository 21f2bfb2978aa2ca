using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.Trellis.Codebooks;

namespace Converter.Cli;

/// <summary>
/// The warning line inspect, eval, compare and ppl print when a model they read carries the quantization_config mark of
/// a non-standard codebook multiplier (<see cref="NonstandardMultiplier"/>): their results are right, but the model is
/// useless in stock exllamav3, and a user comparing numbers should not have to find that out there.
/// </summary>
public static class MultiplierWarning
{
    /// <summary>Warns about <paramref name="modelDir"/> given its parsed config.json.</summary>
    public static void Report(string command, string modelDir, JsonObject config, TextWriter log)
    {
        if (NonstandardMultiplier.Warning(config["quantization_config"]) is { } warning)
            log.WriteLine($"{command}: warning: {modelDir}: {warning}");
    }

    /// <summary>Warns about <paramref name="modelDir"/>, reading its config.json; a folder without one has no mark.</summary>
    public static void Report(string command, string modelDir, TextWriter log)
    {
        var path = Path.Combine(modelDir, "config.json");
        if (!File.Exists(path))
            return;
        // The same reading as the model's own loader, so a damaged config.json fails here as it would there.
        var config = ModelConfig.ReadJsonObject(path);
        Report(command, modelDir, config, log);
    }
}
