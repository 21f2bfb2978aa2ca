using System.Globalization;
using System.Text;

namespace Converter.Formats.IO;

/// <summary>
/// Error messages are printed as one line ("trellis: error: FILE: problem"), but they quote names taken from the file
/// (a tensor name, a JSON key) that may hold a line break or another control character. Those are written as escapes.
/// </summary>
public static class OneLineText
{
    /// <summary><paramref name="text"/> with every control character written as \n, \r, \t or \uXXXX.</summary>
    public static string Escape(string text)
    {
        if (!text.Any(char.IsControl))
            return text;
        var sb = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            _ = c switch
            {
                '\n' => sb.Append("\\n"),
                '\r' => sb.Append("\\r"),
                '\t' => sb.Append("\\t"),
                _ when char.IsControl(c) => sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)),
                _ => sb.Append(c),
            };
        }
        return sb.ToString();
    }
}
