using System.Text;
using System.Text.Json;
using Converter.Formats.IO;

namespace Converter.Conversion.Calibration;

/// <summary>
/// Renders dialogues the way a model's chat template does, for the common template families, recognized from the
/// template's text (not executed: a Jinja engine is out of scope). Each shape writes what its family's template writes
/// for a plain conversation without tools or a generation prompt, minus the leading BOS, which every calibration row
/// gets from the tokenizer instead (<see cref="DocumentRows"/>). A template not recognized, or none, gives plain
/// "User: … / Assistant: …" text, and <see cref="Shape"/> says so in quantization_config.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>Recognized shapes, with the marker each is detected by, in detection order.</summary>
    public static readonly IReadOnlyList<(string Shape, string Marker)> Shapes =
    [
        ("chatml", "<|im_start|>"),
        ("llama3", "<|start_header_id|>"),
        ("gemma", "<start_of_turn>"),
        ("phi3", "<|end|>"),
        ("mistral", "[INST]"),
    ];

    /// <summary>No template: plain "User: …" lines.</summary>
    public const string PlainShape = "plain";

    /// <summary>A template none of <see cref="Shapes"/> matched: plain lines too, recorded apart so the record shows the template was skipped.</summary>
    public const string UnrecognizedShape = "plain (template not recognized)";

    private readonly string _eos;

    private ChatTemplate(string shape, string eos)
    {
        Shape = shape;
        _eos = eos;
    }

    /// <summary>The shape's name: one of <see cref="Shapes"/>, <see cref="PlainShape"/> or <see cref="UnrecognizedShape"/>.</summary>
    public string Shape { get; }

    /// <summary>Whether dialogues are rendered as plain "Role: content" lines (no template, or none recognized).</summary>
    public bool IsPlain => Shape is PlainShape or UnrecognizedShape;

    public static ChatTemplate Plain { get; } = new(PlainShape, "");

    /// <summary>The shape of a template's text (null: no template); <paramref name="eosToken"/> is what Mistral's template appends to a reply.</summary>
    public static ChatTemplate Detect(string? template, string? eosToken)
    {
        if (template is null)
            return Plain;
        foreach (var (shape, marker) in Shapes)
        {
            // Phi-3's <|end|> alone is too common a string; its templates also write <|user|> or, building role
            // headers as '<|' + role + '|>', the generation prompt <|assistant|>.
            if (template.Contains(marker, StringComparison.Ordinal) && (shape != "phi3" || template.Contains("<|user|>", StringComparison.Ordinal)
                || template.Contains("<|assistant|>", StringComparison.Ordinal)))
                return new ChatTemplate(shape, eosToken ?? "</s>");
        }
        return new ChatTemplate(UnrecognizedShape, "");
    }

    /// <summary>
    /// The template of a model folder: tokenizer_config.json's "chat_template" (a string, or a list of named templates
    /// of which "default" or else the first is taken), else a chat_template.jinja file beside it.
    /// </summary>
    public static ChatTemplate ForModel(string modelDir)
    {
        var configPath = Path.Combine(modelDir, "tokenizer_config.json");
        string? template = null, eos = null;
        if (File.Exists(configPath))
        {
            var bytes = File.ReadAllBytes(configPath);
            try
            {
                if (JsonStringCheck.FindUndecodableString(bytes, new JsonDocumentOptions().MaxDepth) is { } undecodable)
                    throw new InvalidDataException($"{configPath}: not valid JSON text: {undecodable}");
                using var config = JsonDocument.Parse(bytes);
                if (config.RootElement.ValueKind == JsonValueKind.Object)
                {
                    template = config.RootElement.TryGetProperty("chat_template", out var t) ? TemplateText(t) : null;
                    eos = config.RootElement.TryGetProperty("eos_token", out var e) ? TokenContent(e) : null;
                }
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{configPath}: not valid JSON ({e.Message.Split('.')[0]})");
            }
        }
        var jinja = Path.Combine(modelDir, "chat_template.jinja");
        if (template is null && File.Exists(jinja))
            template = File.ReadAllText(jinja);
        return Detect(template, eos);
    }

    /// <summary>A template string, or from a list of {"name", "template"} the one named "default", else the first.</summary>
    private static string? TemplateText(JsonElement node) => node.ValueKind switch
    {
        JsonValueKind.String => node.GetString(),
        JsonValueKind.Array => node.EnumerateArray()
            .Where(o => o.ValueKind == JsonValueKind.Object && o.TryGetProperty("template", out var t) && t.ValueKind == JsonValueKind.String)
            .OrderBy(o => o.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String && n.GetString() == "default" ? 0 : 1)
            .Select(o => o.GetProperty("template").GetString()).FirstOrDefault(),
        _ => null,
    };

    private static string? TokenContent(JsonElement node) => node.ValueKind switch
    {
        JsonValueKind.String => node.GetString(),
        JsonValueKind.Object when node.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => null,
    };

    public string Render(IReadOnlyList<ChatMessage> messages)
    {
        var sb = new StringBuilder();
        // Gemma and Mistral templates have no system turn: the system text leads the first user turn.
        var turns = Shape is "gemma" or "mistral" ? FoldSystem(messages) : messages;
        foreach (var m in turns)
        {
            switch (Shape)
            {
                case "chatml":
                    sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
                    break;
                case "llama3":
                    sb.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(m.Content.Trim()).Append("<|eot_id|>");
                    break;
                case "gemma":
                    sb.Append("<start_of_turn>").Append(m.Role == "assistant" ? "model" : m.Role).Append('\n').Append(m.Content.Trim()).Append("<end_of_turn>\n");
                    break;
                case "phi3":
                    sb.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append("<|end|>\n");
                    break;
                case "mistral":
                    if (m.Role == "assistant")
                        sb.Append(m.Content).Append(_eos);
                    else
                        sb.Append("[INST] ").Append(m.Content).Append(" [/INST]");
                    break;
                default:
                    sb.Append(m.Role.Length == 0 ? "" : char.ToUpperInvariant(m.Role[0]) + m.Role[1..]).Append(": ").Append(m.Content).Append('\n');
                    break;
            }
        }
        return sb.ToString();
    }

    private static List<ChatMessage> FoldSystem(IReadOnlyList<ChatMessage> messages)
    {
        var turns = messages.ToList();
        if (turns.Count >= 2 && turns[0].Role == "system" && turns[1].Role == "user")
        {
            turns[1] = turns[1] with { Content = turns[0].Content + "\n\n" + turns[1].Content };
            turns.RemoveAt(0);
        }
        return turns;
    }
}
