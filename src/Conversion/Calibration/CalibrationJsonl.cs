using System.Text.Json;

namespace Converter.Conversion.Calibration;

/// <summary>
/// Calibration documents from JSONL, one JSON object a line: <c>{"text": "…"}</c>, or <c>{"messages": [{"role": "user",
/// "content": "…"}, …]}</c> for a dialogue. Other keys are ignored (datasets carry ids and sources); blank lines are
/// skipped. Any other line is an error naming the file and the line, so a user's file never calibrates half-read.
/// </summary>
public static class CalibrationJsonl
{
    public static IReadOnlyList<CalibrationDocument> ReadFile(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: calibration data not found", path);
        using var reader = new StreamReader(path);
        return Read(reader, path);
    }

    /// <param name="name">The file name errors show.</param>
    public static IReadOnlyList<CalibrationDocument> Read(TextReader reader, string name)
    {
        var documents = new List<CalibrationDocument>();
        int lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            try
            {
                documents.Add(Parse(line));
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{name}:{lineNumber}: not valid JSON ({e.Message.Split('.')[0]})");
            }
            catch (FormatException e)
            {
                throw new InvalidDataException($"{name}:{lineNumber}: {e.Message}");
            }
        }
        return documents.Count > 0 ? documents : throw new InvalidDataException($"{name}: no calibration rows (expected JSONL lines of {{\"text\": …}} or {{\"messages\": […]}})");
    }

    private static CalibrationDocument Parse(string line)
    {
        using var json = JsonDocument.Parse(line);
        var root = json.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new FormatException("expected a JSON object with \"text\" or \"messages\"");
        bool hasText = root.TryGetProperty("text", out var text), hasMessages = root.TryGetProperty("messages", out var messages);
        if (hasText == hasMessages)
            throw new FormatException("expected exactly one of \"text\" and \"messages\"");
        if (hasText)
        {
            if (text.ValueKind != JsonValueKind.String || text.GetString()!.Length == 0)
                throw new FormatException("\"text\" must be a non-empty string");
            return CalibrationDocument.FromText(text.GetString()!);
        }
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            throw new FormatException("\"messages\" must be a non-empty array");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String
                || !m.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                throw new FormatException($"messages[{i}] must be an object with string \"role\" and \"content\"");
            list.Add(new ChatMessage(role.GetString()!, content.GetString()!));
            i++;
        }
        return CalibrationDocument.FromMessages(list);
    }
}
