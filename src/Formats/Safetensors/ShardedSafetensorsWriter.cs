using System.Text.Json;
using Converter.Formats.IO;

namespace Converter.Formats.Safetensors;

/// <summary>
/// Writes a checkpoint directory the way transformers does: one <c>model.safetensors</c> when everything fits in
/// one shard, otherwise <c>model-0000i-of-0000N.safetensors</c> files plus <c>model.safetensors.index.json</c>.
/// Tensors come in modules (e.g. one decoder layer's tensors) and a module is never split across shards, so a
/// loader can stream a layer from one file. A new shard starts when the next module would push the current one
/// past <see cref="MaxShardBytes"/>; a single module larger than the limit gets a shard of its own.
/// </summary>
public sealed class ShardedSafetensorsWriter
{
    private readonly List<IReadOnlyList<PendingTensor>> _modules = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public ShardedSafetensorsWriter(long maxShardBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        MaxShardBytes = maxShardBytes;
    }

    /// <summary>Limit on a shard's tensor data bytes (the header is not counted, as in transformers).</summary>
    public long MaxShardBytes { get; }

    /// <summary><c>__metadata__</c> written into every shard, e.g. {"format": "pt"}.</summary>
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    /// <summary>Queues one module's tensors, to be kept together in one shard.</summary>
    public void AddModule(IEnumerable<PendingTensor> tensors)
    {
        var module = tensors.ToArray();
        foreach (var t in module)
        {
            if (!_names.Add(t.Name))
                throw new ArgumentException($"tensor '{t.Name}' added twice", nameof(tensors));
        }
        if (module.Length > 0)
            _modules.Add(module);
    }

    /// <summary>The tensors of each shard, in order: the grouping <see cref="Write"/> will use.</summary>
    public IReadOnlyList<IReadOnlyList<PendingTensor>> PlanShards()
    {
        var shards = new List<IReadOnlyList<PendingTensor>>();
        var current = new List<PendingTensor>();
        long currentBytes = 0;
        foreach (var module in _modules)
        {
            var moduleBytes = module.Sum(t => t.ByteLength);
            if (current.Count > 0 && currentBytes + moduleBytes > MaxShardBytes)
            {
                shards.Add(current);
                current = [];
                currentBytes = 0;
            }
            current.AddRange(module);
            currentBytes += moduleBytes;
        }
        if (current.Count > 0)
            shards.Add(current);
        return shards;
    }

    /// <summary>
    /// Writes the shards, then the index (so an index never names a shard that is not complete), each atomically,
    /// into an existing <paramref name="directory"/>.
    /// </summary>
    public CheckpointWriteResult Write(string directory)
    {
        var shards = PlanShards();
        if (shards.Count == 0)
            throw new InvalidOperationException("no tensors to write");

        var files = new List<string>();
        var weightMap = new List<KeyValuePair<string, string>>();
        for (var i = 0; i < shards.Count; i++)
        {
            var fileName = shards.Count == 1 ? CheckpointFiles.SingleFile : CheckpointFiles.ShardName(i, shards.Count);
            SafetensorsWriter.Write(Path.Combine(directory, fileName), shards[i], Metadata);
            files.Add(fileName);
            weightMap.AddRange(shards[i].Select(t => KeyValuePair.Create(t.Name, fileName)));
        }

        var totalSize = shards.Sum(s => s.Sum(t => t.ByteLength));
        if (shards.Count > 1)
        {
            AtomicFile.WriteAllBytes(Path.Combine(directory, CheckpointFiles.IndexFile), BuildIndex(totalSize, weightMap));
            files.Add(CheckpointFiles.IndexFile);
        }
        return new CheckpointWriteResult(files, weightMap, totalSize);
    }

    /// <summary>{"metadata": {"total_size": bytes}, "weight_map": {tensor: shard file}}, indented like transformers writes it.</summary>
    private static byte[] BuildIndex(long totalSize, List<KeyValuePair<string, string>> weightMap)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (name, file) in weightMap)
                json.WriteString(name, file);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}

/// <summary>What a checkpoint write produced: file names (shards, then the index if any), tensor → file, total tensor bytes.</summary>
public sealed record CheckpointWriteResult(
    IReadOnlyList<string> Files,
    IReadOnlyList<KeyValuePair<string, string>> WeightMap,
    long TotalSize);
