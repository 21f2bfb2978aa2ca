using System.Text.Json;
using Converter.Formats.IO;

namespace Converter.Formats.Safetensors;

/// <summary>
/// A parsed <c>model.safetensors.index.json</c>: the weight_map from tensor name to shard file, validated so
/// that every shard is a plain file name inside the checkpoint directory that exists.
/// </summary>
public sealed class CheckpointIndex
{
    private CheckpointIndex(IReadOnlyList<string> tensorNames, IReadOnlyDictionary<string, string> weightMap, IReadOnlyList<string> shardFiles, long? totalSize)
    {
        TensorNames = tensorNames;
        WeightMap = weightMap;
        ShardFiles = shardFiles;
        TotalSize = totalSize;
    }

    /// <summary>Tensor names in weight_map order.</summary>
    public IReadOnlyList<string> TensorNames { get; }

    /// <summary>Tensor name → shard file name (relative to the directory).</summary>
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    /// <summary>Distinct shard file names, in order of first appearance.</summary>
    public IReadOnlyList<string> ShardFiles { get; }

    /// <summary>metadata.total_size when present.</summary>
    public long? TotalSize { get; }

    public static CheckpointIndex Load(string indexPath)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var bytes = File.ReadAllBytes(indexPath);
        JsonDocument doc;
        try
        {
            if (JsonStringCheck.FindUndecodableString(bytes, new JsonDocumentOptions().MaxDepth) is { } undecodable)
                throw new SafetensorsFormatException(indexPath, $"index is not valid JSON text: {undecodable}");
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(indexPath, $"index is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(indexPath, $"index is a JSON {root.ValueKind}, expected an object");
            if (!root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(indexPath, "index has no weight_map object");

            // Informational only (nothing reads it to size anything), so a value that is no byte count is left out.
            long? totalSize = null;
            if (root.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object &&
                meta.TryGetProperty("total_size", out var size) && size.ValueKind == JsonValueKind.Number)
            {
                totalSize = size.TryGetInt64(out var s) ? s
                    : size.TryGetDouble(out var d) && d is >= 0 and < long.MaxValue ? (long)d : null;
            }

            var names = new List<string>();
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            var shards = new List<string>();
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsFormatException(indexPath, entry.Name, $"weight_map value is a JSON {entry.Value.ValueKind}, expected a file name");
                var file = entry.Value.GetString()!;
                if (!weightMap.TryAdd(entry.Name, file))
                    throw new SafetensorsFormatException(indexPath, entry.Name, "listed twice in weight_map");
                names.Add(entry.Name);
                if (!shards.Contains(file))
                {
                    CheckShardFile(indexPath, directory, entry.Name, file);
                    shards.Add(file);
                }
            }
            if (names.Count == 0)
                throw new SafetensorsFormatException(indexPath, "weight_map is empty");
            return new CheckpointIndex(names, weightMap, shards, totalSize);
        }
    }

    private static void CheckShardFile(string indexPath, string directory, string tensor, string file)
    {
        // A shard must sit beside the index: a name with a directory part (or "..") could read files elsewhere.
        if (file.Length == 0 || file != Path.GetFileName(file) || file is "." or "..")
            throw new SafetensorsFormatException(indexPath, tensor, $"shard '{file}' is not a plain file name");
        if (!File.Exists(Path.Combine(directory, file)))
            throw new SafetensorsFormatException(indexPath, tensor, $"shard file '{file}' is missing from {directory}");
    }
}
