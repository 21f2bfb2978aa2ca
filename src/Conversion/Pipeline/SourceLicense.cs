namespace Converter.Conversion.Pipeline;

/// <summary>
/// The license a source model's own card declares (the <c>license</c>, <c>license_name</c> and <c>license_link</c>
/// lines of its README.md front matter), carried into the converted model's card, which replaces the source's: a
/// quantization stays under the original's license.
/// </summary>
public static class SourceLicense
{
    private static readonly string[] Keys = ["license:", "license_name:", "license_link:"];

    public static IReadOnlyList<string> Read(string modelDir)
    {
        var path = Path.Combine(modelDir, ModelCard.FileName);
        if (!File.Exists(path))
            return [];
        var lines = File.ReadLines(path).Take(200).ToList();
        if (lines.Count == 0 || lines[0].Trim() != "---")
            return [];
        int end = lines.FindIndex(1, l => l.Trim() == "---");
        if (end < 0)
            return [];
        // Top-level single-line keys only (no indentation): a nested "license:" belongs to something else.
        return lines.Skip(1).Take(end - 1)
            .Where(l => Keys.Any(k => l.StartsWith(k, StringComparison.Ordinal)) && l[(l.IndexOf(':') + 1)..].Trim().Length > 0)
            .Select(l => l.TrimEnd()).ToList();
    }
}
