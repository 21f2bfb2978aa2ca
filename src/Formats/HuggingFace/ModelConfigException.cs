using Converter.Formats.IO;

namespace Converter.Formats.HuggingFace;

/// <summary>A config.json that is malformed or describes a model this toolchain does not support; the message starts with the file.</summary>
public sealed class ModelConfigException : Exception
{
    public ModelConfigException(string path, string problem, Exception? inner = null)
        : base(OneLineText.Escape($"{path}: {problem}"), inner)
    {
        FilePath = path;
    }

    public string FilePath { get; }
}
