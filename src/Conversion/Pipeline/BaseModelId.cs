using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The Hugging Face id (<c>owner/name</c>) of a source model, for the model card's <c>base_model</c>: from the Hub
/// cache's folder layout (<c>…/models--owner--name/snapshots/…</c>), else from config.json's <c>_name_or_path</c>
/// when it is an id rather than a local path. Null when neither says, rather than a guess.
/// </summary>
public static partial class BaseModelId
{
    public static string? Find(string modelDir, JsonObject config)
    {
        foreach (var part in Path.GetFullPath(modelDir).Split(Path.DirectorySeparatorChar).Reverse())
        {
            if (part.StartsWith("models--", StringComparison.Ordinal) && part[8..].Split("--") is [var owner, var name] && IsId($"{owner}/{name}"))
                return $"{owner}/{name}";
        }
        return config["_name_or_path"] is JsonValue v && v.TryGetValue<string>(out var id) && IsId(id) ? id : null;
    }

    /// <summary>owner/name as the Hub spells them: letters, digits, '-', '_', '.', not starting with '.' or '-'.</summary>
    public static bool IsId(string text) => HubId().IsMatch(text);

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    private static partial Regex HubId();
}
