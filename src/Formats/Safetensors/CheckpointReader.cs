namespace Converter.Formats.Safetensors;

/// <summary>
/// The tensors of a Hugging Face checkpoint directory, single-file (<c>model.safetensors</c>) or sharded
/// (<c>model.safetensors.index.json</c> + shards), behind one name-based API. Shards are mapped on first use,
/// so streaming a model layer by layer maps only the files it touches (their headers are all checked on opening). Thread-safe for reads.
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
    /// Validates the index, every shard's header, and that each shard holds the tensors the index maps to it.
    /// </summary>
    public static CheckpointReader Open(string directory)
    {
        var indexPath = Path.Combine(directory, CheckpointFiles.IndexFile);
        if (File.Exists(indexPath))
        {
            var index = CheckpointIndex.Load(indexPath);
            var shardFiles = index.ShardFiles.ToArray();
            var shardOf = index.TensorNames.ToDictionary(n => n, n => Array.IndexOf(shardFiles, index.WeightMap[n]), StringComparer.Ordinal);
            CheckShardHeaders(directory, indexPath, shardFiles, shardOf);
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
    /// Reads every shard's header (its data is mapped only when first used) and checks that each tensor is where the
    /// index says: a damaged shard or a tensor in the wrong shard then fails on opening, before a long job has written
    /// anything, not when the job reaches that tensor hours later.
    /// </summary>
    private static void CheckShardHeaders(string directory, string indexPath, string[] shardFiles, Dictionary<string, int> shardOf)
    {
        var contents = shardFiles
            .Select(f => SafetensorsHeader.Read(Path.Combine(directory, f)).Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal))
            .ToArray();
        foreach (var (name, shard) in shardOf)
        {
            if (!contents[shard].Contains(name))
                throw new SafetensorsFormatException(indexPath, name, $"index maps it to '{shardFiles[shard]}', which does not contain it");
        }
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

    public void ReleaseResidentPages()
    {
        lock (_lock)
        {
            foreach (var shard in _shards)
                shard?.ReleaseResidentPages();
        }
    }

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
