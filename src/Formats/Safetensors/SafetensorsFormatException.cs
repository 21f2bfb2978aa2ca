using Converter.Formats.IO;

namespace Converter.Formats.Safetensors;

/// <summary>
/// A safetensors file, checkpoint directory or index is malformed, or does not hold what was asked for.
/// The message always starts with the file (and names the tensor when one is involved), and is one line (control
/// characters of names escaped), so that a CLI can print it as-is.
/// </summary>
public sealed class SafetensorsFormatException : Exception
{
    public SafetensorsFormatException(string path, string problem, Exception? inner = null)
        : base(OneLineText.Escape($"{path}: {problem}"), inner)
    {
        FilePath = path;
    }

    public SafetensorsFormatException(string path, string tensor, string problem, Exception? inner = null)
        : base(OneLineText.Escape($"{path}: tensor '{tensor}': {problem}"), inner)
    {
        FilePath = path;
        TensorName = tensor;
    }

    /// <summary>The file or directory at fault.</summary>
    public string FilePath { get; }

    /// <summary>The tensor at fault, when the problem concerns one.</summary>
    public string? TensorName { get; }
}
