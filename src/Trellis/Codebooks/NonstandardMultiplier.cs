using System.Text.Json.Nodes;

namespace Converter.Trellis.Codebooks;

/// <summary>
/// A codebook multiplier other than the one exllamav3 locks (docs/exl3-format.md §1.3–§1.4): exllamav3 never reads the
/// marker's value and decodes with its own fixed multiplier, so such a model loads there without error and produces
/// garbage. The one wording of that fact (convert's refusal, the model card, the warnings of inspect and eval) and the
/// mark a model written with such a multiplier carries in quantization_config.
/// </summary>
public static class NonstandardMultiplier
{
    /// <summary>The quantization_config key of the mark; absent from a model with the default multiplier.</summary>
    public const string ConfigKey = "nonstandard_multiplier";

    public static string ExllamaMultiplierHex(CodebookSpec spec) => $"0x{spec.Definition.DefaultMultiplier:X8}";

    /// <summary>Why such a model is a trap, naming both multipliers.</summary>
    public static string Consequence(CodebookSpec spec) =>
        $"exllamav3 decodes {spec.Name} with its own fixed multiplier {ExllamaMultiplierHex(spec)} and ignores the one stored, " +
        $"so a model written with {spec.MultiplierHex} loads there without error and produces garbage";

    /// <summary>The quantization_config value under <see cref="ConfigKey"/> for a model written with <paramref name="spec"/>.</summary>
    public static JsonObject ConfigMark(CodebookSpec spec) => new()
    {
        ["codebook"] = spec.Name,
        ["multiplier"] = spec.MultiplierHex,
        ["exllamav3_multiplier"] = ExllamaMultiplierHex(spec),
        ["exllamav3_can_decode"] = false,
    };

    /// <summary>The warning for a model whose quantization_config carries the mark, or null when it does not.</summary>
    public static string? Warning(JsonNode? quantizationConfig)
    {
        if (quantizationConfig is not JsonObject config || config[ConfigKey] is not JsonObject mark)
            return null;
        string codebook = Text(mark["codebook"]) ?? "its codebook", multiplier = Text(mark["multiplier"]) ?? "?";
        string locked = Text(mark["exllamav3_multiplier"]) ?? "another";
        return $"written with the non-standard {codebook} multiplier {multiplier} (quantization_config.{ConfigKey}): stock exllamav3 cannot decode it " +
            $"(it decodes {codebook} with its fixed multiplier {locked}, so the model loads there and produces garbage); only trellis reads it correctly";
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
