namespace Converter.Formats.Safetensors;

/// <summary>File names of a Hugging Face safetensors checkpoint, as transformers' save_pretrained writes them.</summary>
public static class CheckpointFiles
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>"model-00001-of-00004.safetensors" for shard 0 of 4 (1-based, five digits).</summary>
    public static string ShardName(int index, int count) => $"model-{index + 1:D5}-of-{count:D5}.safetensors";
}
