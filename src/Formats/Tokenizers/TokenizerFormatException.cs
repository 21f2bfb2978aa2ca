using Converter.Formats.IO;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// A tokenizer.json that cannot be read: malformed JSON, a missing or mistyped member, or a component this
/// implementation does not support. The message names the file and the JSON path of the culprit.
/// </summary>
public sealed class TokenizerFormatException : FormatException
{
    public TokenizerFormatException(string source, string message, Exception? inner = null)
        : base(OneLineText.Escape($"{source}: {message}"), inner)
    {
        TokenizerSource = source;
    }

    /// <summary>The file (or the name given to in-memory JSON) that failed to load.</summary>
    public string TokenizerSource { get; }
}
