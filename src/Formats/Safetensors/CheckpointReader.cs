namespace Converter.Formats.Safetensors;

/// <summary>
/// The tensors of a Hugging Face checkpoint directory, single-file (<c>model.safetensors</c>) or sharded
/// (<c>model.safetensors.index.json</c> + shards), behind one name-based API. Shards are opened on first use,
/// so streaming a model layer by layer maps only the files it touches. Thread-safe for reads.
/// </summary>
public sealed class CheckpointReader : ITensorReader
{
    private readonly string[] _shardFiles;
    private readonly SafetensorsFile?[] _shards;
    private readonly Dictionary<string, int> _shardOf;
    private readonly string? _indexPath;
    private readonly Lock _lock = new();
    private bool _disposed;

    private CheckpointReader(string directory, string? indexPath, string[] shardFiles, IReadOnlyList<string> names, Dictionary<string, int> shardOf, SafetensorsFile? openedSingle)
    {
        Directory = directory;
        _indexPath = indexPath;
        _shardFiles = shardFiles;
        _shards = new SafetensorsFile?[shardFiles.Length];
        if (openedSingle != null)
            _shards[0] = openedSingle;
        TensorNames = names;
        _shardOf = shardOf;
    }

    public string Directory { get; }

    /// <summary>True when the directory has an index and shards.</summary>
    public bool IsSharded => _indexPath != null;

    /// <summary>Shard file names relative to <see cref="Directory"/> (one entry for a single-file checkpoint).</summary>
    public IReadOnlyList<string> ShardFiles => _shardFiles;

    public IReadOnlyList<string> TensorNames { get; }

    /// <summary>
    /// Opens a checkpoint directory, preferring the index when both forms are present (as transformers does).
    /// Validates the index and that every shard it names exists; shard headers are validated when first opened.
    /// </summary>
    public static CheckpointReader Open(string directory)
    {
        var indexPath = Path.Combine(directory, CheckpointFiles.IndexFile);
        if (File.Exists(indexPath))
        {
            var index = CheckpointIndex.Load(indexPath);
            var shardFiles = index.ShardFiles.ToArray();
            var shardOf = index.TensorNames.ToDictionary(n => n, n => Array.IndexOf(shardFiles, index.WeightMap[n]), StringComparer.Ordinal);
            return new CheckpointReader(directory, indexPath, shardFiles, index.TensorNames, shardOf, null);
        }

        var singlePath = Path.Combine(directory, CheckpointFiles.SingleFile);
        if (File.Exists(singlePath))
        {
            var file = SafetensorsFile.Open(singlePath);
            var shardOf = file.TensorNames.ToDictionary(n => n, _ => 0, StringComparer.Ordinal);
            return new CheckpointReader(directory, null, [CheckpointFiles.SingleFile], file.TensorNames, shardOf, file);
        }

        throw new SafetensorsFormatException(directory, $"no {CheckpointFiles.SingleFile} or {CheckpointFiles.IndexFile} in the directory");
    }

    /// <summary>
    /// The tensor names of the checkpoint in <paramref name="directory"/>, from its index or from the single file's
    /// header alone (no data is mapped), preferring the index as <see cref="Open"/> does; null when the directory holds
    /// neither. For choosing between name layouts before the checkpoint is opened.
    /// </summary>
    public static IReadOnlyList<string>? ReadTensorNames(string directory)
    {
        var indexPath = Path.Combine(directory, CheckpointFiles.IndexFile);
        if (File.Exists(indexPath))
            return CheckpointIndex.Load(indexPath).TensorNames;
        var singlePath = Path.Combine(directory, CheckpointFiles.SingleFile);
        return File.Exists(singlePath) ? SafetensorsHeader.Read(singlePath).Tensors.Select(t => t.Name).ToArray() : null;
    }

    public bool Contains(string name) => _shardOf.ContainsKey(name);

    public TensorInfo Info(string name) => ShardFor(name).Info(name);

    public string FileOf(string name) => Path.Combine(Directory, _shardFiles[ShardIndex(name)]);

    public ReadOnlySpan<byte> RawBytes(string name, long offset, int length) => ShardFor(name).RawBytes(name, offset, length);

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            for (var i = 0; i < _shards.Length; i++)
            {
                _shards[i]?.Dispose();
                _shards[i] = null;
            }
        }
    }

    private int ShardIndex(string name) =>
        _shardOf.TryGetValue(name, out var i) ? i : throw new SafetensorsFormatException(_indexPath ?? Path.Combine(Directory, CheckpointFiles.SingleFile), name, "not found in checkpoint");

    private SafetensorsFile ShardFor(string name)
    {
        var i = ShardIndex(name);
        var shard = Volatile.Read(ref _shards[i]) ?? OpenShard(i);
        // The index may name a shard that lacks the tensor; say so instead of "not found in file".
        if (!shard.Contains(name))
            throw new SafetensorsFormatException(_indexPath!, name, $"index maps it to '{_shardFiles[i]}', which does not contain it");
        return shard;
    }

    private SafetensorsFile OpenShard(int i)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _shards[i] ??= SafetensorsFile.Open(Path.Combine(Directory, _shardFiles[i]));
        }
    }

    public override string ToString() => $"{Directory} ({TensorNames.Count} tensors in {_shardFiles.Length} file(s))";
}
