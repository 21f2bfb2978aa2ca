using System.IO.Compression;

namespace Converter.Tools.CalibrationData;

/// <summary>An English string and its translation, from a satellite resource and the neutral resource of its main assembly.</summary>
public sealed record TranslationPair(string Language, string English, string Translated, string Id);

/// <summary>
/// Non-English text in several scripts: the localized satellite resources of the .NET SDK (13 languages: Latin,
/// Cyrillic, CJK, Hangul, Kana scripts) and Humanizer.Core's resource packages for scripts the SDK lacks (Arabic,
/// Persian, Hebrew, Thai, Greek, Bengali, Armenian, Vietnamese). Both MIT.
/// </summary>
public static class MultilingualSources
{
    public const string SdkSource = ".NET SDK localized resources";
    public const string HumanizerSource = "Humanizer.Core.<lang> resources";

    /// <summary>The SDK's localization languages, with the English names the translation dialogues use.</summary>
    public static readonly IReadOnlyDictionary<string, string> SdkLanguages = new Dictionary<string, string>
    {
        ["cs"] = "Czech",
        ["de"] = "German",
        ["es"] = "Spanish",
        ["fr"] = "French",
        ["it"] = "Italian",
        ["ja"] = "Japanese",
        ["ko"] = "Korean",
        ["pl"] = "Polish",
        ["pt-BR"] = "Brazilian Portuguese",
        ["ru"] = "Russian",
        ["tr"] = "Turkish",
        ["zh-Hans"] = "Simplified Chinese",
        ["zh-Hant"] = "Traditional Chinese",
    };

    /// <summary>Strings shorter than this are mostly labels and single words, not text.</summary>
    private const int MinChars = 16;

    /// <summary>Documents are cut at line ends to at most this many characters, so one resource file never dominates.</summary>
    private const int DocumentChars = 4000;

    public static (List<SourceDocument> Documents, List<TranslationPair> Pairs) FromSdk(string sdkRoot, long bytesPerLanguage, ICollection<SourceDocument>? heldOut = null)
    {
        var documents = new List<SourceDocument>();
        var pairs = new List<TranslationPair>();
        foreach (var (culture, _) in SdkLanguages.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var candidates = new List<SourceDocument>();
            var satellites = Directory.EnumerateFiles(sdkRoot, "*.resources.dll", SearchOption.AllDirectories)
                .Where(p => Path.GetFileName(Path.GetDirectoryName(p)) == culture)
                .Order(StringComparer.Ordinal);
            foreach (var satellite in satellites)
            {
                var assemblyName = Path.GetFileName(satellite)[..^".resources.dll".Length];
                var mainPath = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(satellite)!)!, assemblyName + ".dll");
                var neutral = File.Exists(mainPath) ? ResourceStrings.Read(File.ReadAllBytes(mainPath)) : [];
                var lines = new List<string>();
                foreach (var (resource, strings) in ResourceStrings.Read(File.ReadAllBytes(satellite)))
                {
                    neutral.TryGetValue(ResourceStrings.NeutralName(resource, culture), out var english);
                    foreach (var (key, value) in strings.OrderBy(s => s.Key, StringComparer.Ordinal))
                    {
                        var text = value.Trim();
                        string? source = english?.GetValueOrDefault(key)?.Trim();
                        // Untranslated entries (equal to the English) are English text, not this language.
                        if (text.Length < MinChars || source == text || !seen.Add(text))
                            continue;
                        lines.Add(text);
                        if (source is { Length: >= MinChars and <= 400 } && text.Length <= 600)
                            pairs.Add(new TranslationPair(SdkLanguages[culture], source, text, $"{culture}/{assemblyName}/{key}"));
                    }
                }
                int chunk = 0;
                foreach (var piece in Budget.Chunks(string.Join('\n', lines), DocumentChars))
                    candidates.Add(new SourceDocument(SdkSource, "MIT", $"{culture}/{assemblyName}#{chunk++}", piece));
            }
            documents.AddRange(Budget.Take(candidates, bytesPerLanguage, heldOut));
        }
        return (documents, pairs);
    }

    /// <summary>All strings of the Humanizer.Core.&lt;lang&gt; packages given, one language per document group.</summary>
    public static List<SourceDocument> FromHumanizer(IEnumerable<string> nupkgs)
    {
        var documents = new List<SourceDocument>();
        foreach (var nupkg in nupkgs.Order(StringComparer.Ordinal))
        {
            using var zip = ZipFile.OpenRead(nupkg);
            // One target framework's copy is enough: the satellites of all frameworks hold the same strings.
            var entry = zip.Entries.Where(e => e.FullName.StartsWith("lib/net", StringComparison.Ordinal) && e.FullName.EndsWith("/Humanizer.resources.dll", StringComparison.Ordinal))
                .OrderBy(e => e.FullName, StringComparer.Ordinal).FirstOrDefault()
                ?? throw new InvalidDataException($"{nupkg}: no lib/*/<lang>/Humanizer.resources.dll");
            var culture = entry.FullName.Split('/')[^2];
            using var copy = new MemoryStream();
            using (var s = entry.Open())
                s.CopyTo(copy);
            var lines = ResourceStrings.Read(copy.ToArray())
                .SelectMany(r => r.Value.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => s.Value.Trim()))
                .Where(v => v.Length >= 2).Distinct(StringComparer.Ordinal).ToList();
            int chunk = 0;
            foreach (var piece in Budget.Chunks(string.Join('\n', lines), DocumentChars))
                documents.Add(new SourceDocument(HumanizerSource, "MIT", $"{culture}/Humanizer#{chunk++}", piece));
        }
        return documents;
    }
}
