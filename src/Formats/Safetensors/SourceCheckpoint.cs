using System.Text.Json.Nodes;

namespace Converter.Formats.Safetensors;

/// <summary>
/// Opens a Hugging Face checkpoint as the converter, eval and inspect read it: a block-scaled FP8 checkpoint
/// (config.json's quantization_config {quant_method: "fp8"}) through <see cref="Fp8DequantizedReader"/>, anything
/// else as stored.
/// </summary>
public static class SourceCheckpoint
{
    /// <summary>DeepSeek-V3's and Qwen3-FP8's weight_block_size, used when the config gives none.</summary>
    public const int DefaultBlock = 128;

    /// <param name="config">The parsed config.json (its quantization_config decides), or null to open as stored.</param>
    public static ITensorReader Open(string directory, JsonObject? config)
    {
        var reader = CheckpointReader.Open(directory);
        try
        {
            if (config?["quantization_config"] is not JsonObject quantization || (string?)quantization["quant_method"] != "fp8")
                return reader;
            var (rows, cols) = BlockSize(directory, quantization);
            return new Fp8DequantizedReader(reader, rows, cols);
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    private static (int Rows, int Cols) BlockSize(string directory, JsonObject quantization)
    {
        if (quantization["weight_block_size"] is not JsonArray size)
            return (DefaultBlock, DefaultBlock);
        if (size.Count != 2 || size.Any(v => v is not JsonValue value || !value.TryGetValue<int>(out var n) || n <= 0))
            throw new SafetensorsFormatException(Path.Combine(directory, "config.json"), "quantization_config.weight_block_size", $"is {size.ToJsonString()}, expected two positive integers");
        return ((int)size[0]!, (int)size[1]!);
    }
}
