using System.IO.Compression;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Converter.Tools.CalibrationData;

/// <summary>
/// Writes a category as gzip-compressed JSONL, one document a line, in the shapes `trellis convert --cal-data`
/// reads ({"text": …} or {"messages": […]}, plus "source" and "id" for provenance), and returns its manifest entry.
/// </summary>
public static class CorpusWriter
{
    private static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static JsonObject WriteTexts(string path, IReadOnlyList<SourceDocument> documents) =>
        Write(path, documents.Select(d => (d.Source, d.License, d.Bytes, new JsonObject { ["text"] = d.Text, ["source"] = d.Source, ["id"] = d.Id })));

    public static JsonObject WriteDialogues(string path, IReadOnlyList<Dialogue> dialogues) =>
        Write(path, dialogues.Select(d => (d.Source, d.License, d.Bytes, new JsonObject
        {
            ["messages"] = new JsonArray([.. d.Messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content })]),
            ["source"] = d.Source,
            ["id"] = d.Id,
        })));

    private static JsonObject Write(string path, IEnumerable<(string Source, string License, int Bytes, JsonObject Line)> rows)
    {
        var text = new StringBuilder();
        var sources = new SortedDictionary<string, (string License, int Documents, long Bytes)>(StringComparer.Ordinal);
        int documents = 0;
        long bytes = 0;
        foreach (var (source, license, size, line) in rows)
        {
            text.Append(line.ToJsonString(Compact)).Append('\n');
            var s = sources.GetValueOrDefault(source, (license, 0, 0));
            sources[source] = (license, s.Documents + 1, s.Bytes + size);
            documents++;
            bytes += size;
        }
        var raw = Encoding.UTF8.GetBytes(text.ToString());
        using (var file = File.Create(path))
        using (var gzip = new GZipStream(file, CompressionLevel.SmallestSize))
            gzip.Write(raw);
        return new JsonObject
        {
            ["file"] = Path.GetFileName(path),
            ["documents"] = documents,
            ["text_bytes"] = bytes,
            ["jsonl_bytes"] = raw.Length,
            ["compressed_bytes"] = new FileInfo(path).Length,
            ["sources"] = new JsonArray([.. sources.Select(s => (JsonNode)new JsonObject
            {
                ["name"] = s.Key, ["license"] = s.Value.License, ["documents"] = s.Value.Documents, ["text_bytes"] = s.Value.Bytes,
            })]),
        };
    }
}
