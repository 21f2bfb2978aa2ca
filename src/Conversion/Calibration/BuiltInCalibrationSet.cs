using System.IO.Compression;
using System.Text;
using Converter.Conversion.Samples;

namespace Converter.Conversion.Calibration;

/// <summary>
/// The default calibration data, built into Converter.Conversion.dll so an installed tool needs no repository: English prose
/// (samples/data/calibration.txt, embedded on its own) and the code, technical, multilingual and dialogue documents
/// of samples/calibration/ (gzip JSONL written by tools/CalibrationData, whose manifest.json credits every source).
/// </summary>
public static class BuiltInCalibrationSet
{
    public const string Name = "trellis-cal";

    /// <summary>Version of the data in samples/calibration/manifest.json; bump both when the set is rebuilt with other content.</summary>
    public const int Version = 1;

    public static string Label => $"{Name} v{Version}";

    /// <summary>The categories stored in samples/calibration/ as &lt;name&gt;.jsonl.gz.</summary>
    public static readonly IReadOnlyList<string> StoredCategories = ["code", "technical", "multilingual", "dialogue"];

    public const string ResourceFolder = "samples/calibration/";

    /// <summary>Prose documents are runs of consecutive paragraphs of at least this many characters, so a row reads on rather than hopping between texts at every line.</summary>
    private const int ProseDocumentChars = 2000;

    /// <summary>Every category's documents, in stored order, by category name (the text categories of <see cref="CalibrationMix"/>).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<CalibrationDocument>> Load()
    {
        var categories = new Dictionary<string, IReadOnlyList<CalibrationDocument>>(StringComparer.Ordinal)
        {
            ["prose"] = Prose(BuiltInSamples.CalibrationText.ReadAll("calibration text")),
        };
        foreach (var name in StoredCategories)
        {
            var resource = ResourceFolder + name + ".jsonl.gz";
            using var stream = typeof(BuiltInCalibrationSet).Assembly.GetManifestResourceStream(resource)
                ?? throw new InvalidOperationException($"Converter.Conversion.dll lacks the built-in calibration data '{resource}'");
            using var reader = new StreamReader(new GZipStream(stream, CompressionMode.Decompress), Encoding.UTF8);
            categories[name] = CalibrationJsonl.Read(reader, "built-in " + resource);
        }
        return categories;
    }

    /// <summary>The manifest of samples/calibration/ (sources, licenses, byte counts), as built in.</summary>
    public static string Manifest()
    {
        using var stream = typeof(BuiltInCalibrationSet).Assembly.GetManifestResourceStream(ResourceFolder + "manifest.json")
            ?? throw new InvalidOperationException($"Converter.Conversion.dll lacks the built-in '{ResourceFolder}manifest.json'");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>Consecutive non-empty lines joined until a document reaches <see cref="ProseDocumentChars"/>.</summary>
    public static List<CalibrationDocument> Prose(string text)
    {
        var documents = new List<CalibrationDocument>();
        var current = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            var trimmed = line.TrimEnd('\r');
            if (trimmed.Trim().Length == 0)
                continue;
            current.Append(trimmed).Append('\n');
            if (current.Length >= ProseDocumentChars)
            {
                documents.Add(CalibrationDocument.FromText(current.ToString().TrimEnd()));
                current.Clear();
            }
        }
        if (current.Length > 0)
            documents.Add(CalibrationDocument.FromText(current.ToString().TrimEnd()));
        return documents;
    }
}
