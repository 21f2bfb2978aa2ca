using System.Text.Json.Nodes;

namespace Converter.Conversion.Calibration;

/// <summary>
/// What a conversion calibrated on, as quantization_config.calibration records it (exllamav3 writes rows and cols
/// there; the other keys are ours): the data set, rows × tokens, whether the volume was scaled to the model or given,
/// the seed, rows per category, and the chat template shape dialogues were rendered with (null when no dialogue was used).
/// Everything follows from the settings and the model folder, so a resumed job records the same.
/// </summary>
public sealed record CalibrationRecord(
    string Dataset,
    int Rows,
    int Cols,
    string Volume,
    int Seed,
    IReadOnlyList<(string Category, int Rows)> Categories,
    string? ChatTemplate)
{
    public JsonObject ToJson()
    {
        var categories = new JsonObject();
        foreach (var (name, rows) in Categories)
            categories[name] = rows;
        return new JsonObject
        {
            ["rows"] = Rows,
            ["cols"] = Cols,
            ["dataset"] = Dataset,
            ["volume"] = Volume,
            ["seed"] = Seed,
            ["categories"] = categories,
            ["chat_template"] = ChatTemplate,
        };
    }

    /// <summary>The data and its mix, for the model card: "built-in trellis-cal v1 (rows: prose 45, code 19, …; dialogue as chatml)".</summary>
    public string Source()
    {
        var parts = new List<string>();
        if (Categories.Count > 1)
            parts.Add("rows: " + string.Join(", ", Categories.Select(c => $"{c.Category} {c.Rows}")));
        if (ChatTemplate is { } t)
            parts.Add($"dialogue as {t}");
        return parts.Count == 0 ? Dataset : $"{Dataset} ({string.Join("; ", parts)})";
    }

    /// <summary>One line for the log: "128 rows × 512 tokens of built-in trellis-cal v1 (rows: prose 45, …), seed 0".</summary>
    public string Describe() => $"{Rows} rows × {Cols} tokens of {Source()}, seed {Seed}";
}
