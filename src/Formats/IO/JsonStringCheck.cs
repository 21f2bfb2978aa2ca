using System.Text.Json;
using System.Text.Unicode;

namespace Converter.Formats.IO;

/// <summary>
/// System.Text.Json parses a document without decoding its strings, and later throws InvalidOperationException from
/// GetString or a property's Name when a string holds bytes that are not UTF-8 or escapes an unpaired surrogate
/// ("\ud800"). Readers of files from the outside check the whole document once, before parsing it, so that such a
/// file fails as bad input naming the file, like any other malformed JSON.
/// </summary>
public static class JsonStringCheck
{
    /// <summary>
    /// Null when every string and property name of <paramref name="utf8Json"/> decodes to .NET text; otherwise what is
    /// wrong and at which byte. Malformed JSON (or nesting deeper than <paramref name="maxDepth"/>) throws
    /// <see cref="JsonException"/>, as parsing it would.
    /// </summary>
    public static string? FindUndecodableString(ReadOnlySpan<byte> utf8Json, int maxDepth)
    {
        var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { MaxDepth = maxDepth });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName))
                continue;
            if (!reader.ValueIsEscaped)
            {
                if (!Utf8.IsValid(reader.ValueSpan))
                    return $"a string at byte {reader.TokenStartIndex} is not valid UTF-8";
                continue;
            }
            try
            {
                _ = reader.GetString();
            }
            catch (InvalidOperationException)
            {
                return $"a string at byte {reader.TokenStartIndex} is not valid UTF-8 or escapes an unpaired surrogate";
            }
        }
        return null;
    }
}
