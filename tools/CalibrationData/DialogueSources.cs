using System.Security.Cryptography;
using System.Text;

namespace Converter.Tools.CalibrationData;

/// <summary>One chat turn.</summary>
public sealed record Message(string Role, string Content);

/// <summary>A dialogue of the dialogue category, rendered at conversion time through the model's chat template.</summary>
public sealed record Dialogue(string Source, string License, string Id, IReadOnlyList<Message> Messages)
{
    public int Bytes => Messages.Sum(m => Encoding.UTF8.GetByteCount(m.Content));
}

/// <summary>
/// Dialogues built from the other sources, each answer a real text and never invented: questions about a documented
/// API member answered by its documentation summary, requests to translate an SDK message answered by the SDK's own
/// translation, requests to continue a passage of the prose answered by the passage that follows it, and questions
/// about a code excerpt's language answered by the file's language. Two or three exchanges per dialogue; every
/// third dialogue opens with a system message.
/// </summary>
public static class DialogueSources
{
    private static readonly string[] SystemPrompts =
    [
        "You are a helpful assistant.",
        "You are a knowledgeable assistant. Answer accurately and concisely.",
        "You are an expert software engineer who explains APIs clearly.",
    ];

    private static readonly string[] ApiQuestions =
    [
        "What does {0} do?", "In .NET, what is {0} for?", "Can you explain {0}?", "Briefly, what is the purpose of {0}?",
    ];

    public static List<Dialogue> ApiQuestionsAndAnswers(IEnumerable<DocumentedMember> members, string source, long budget)
    {
        var dialogues = new List<Dialogue>();
        // Members of one type make one dialogue: a question, then follow-ups about its other members.
        foreach (var group in members.GroupBy(m => m.Type).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var list = group.OrderBy(m => Hash(m.Id), StringComparer.Ordinal).Take(3).ToList();
            var messages = new List<Message>();
            for (int i = 0; i < list.Count; i++)
            {
                var name = $"`{list[i].Type}.{list[i].Member}`";
                var question = i == 0 ? string.Format(null, ApiQuestions[Pick(list[i].Id, ApiQuestions.Length)], name) : $"And {name}?";
                messages.Add(new Message("user", question));
                messages.Add(new Message("assistant", list[i].Summary));
            }
            dialogues.Add(WithSystem(new Dialogue(source, "MIT", "api/" + list[0].Id, messages)));
        }
        return Take(dialogues, budget);
    }

    public static List<Dialogue> Translations(IEnumerable<TranslationPair> pairs, long budget)
    {
        var dialogues = new List<Dialogue>();
        foreach (var group in pairs.GroupBy(p => p.Language).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var list = group.OrderBy(p => Hash(p.Id), StringComparer.Ordinal).ToList();
            for (int i = 0; i + 1 < list.Count; i += 2)
            {
                var messages = new List<Message>
                {
                    new("user", $"Translate into {list[i].Language}: {list[i].English}"), new("assistant", list[i].Translated),
                    new("user", $"Now this one: {list[i + 1].English}"), new("assistant", list[i + 1].Translated),
                };
                dialogues.Add(WithSystem(new Dialogue(MultilingualSources.SdkSource, "MIT", "translate/" + list[i].Id, messages)));
            }
        }
        return Take(dialogues, budget);
    }

    /// <summary>Consecutive paragraphs of the prose: continue one, then "go on" for the next.</summary>
    public static List<Dialogue> Continuations(IReadOnlyList<string> paragraphs, string source, string license, long budget)
    {
        var dialogues = new List<Dialogue>();
        for (int i = 0; i + 2 < paragraphs.Count; i += 3)
        {
            if (paragraphs[i].Length < 200 || paragraphs[i + 1].Length < 200 || paragraphs[i + 2].Length < 100)
                continue;
            var messages = new List<Message>
            {
                new("user", $"Continue this passage:\n\n{paragraphs[i]}"), new("assistant", paragraphs[i + 1]),
                new("user", "Go on."), new("assistant", paragraphs[i + 2]),
            };
            dialogues.Add(WithSystem(new Dialogue(source, license, $"continue/{i}", messages)));
        }
        return Take(dialogues, budget);
    }

    /// <summary>"Which language is this?" over the first lines of a code document, answered from the file's extension.</summary>
    public static List<Dialogue> CodeLanguages(IEnumerable<SourceDocument> code, long budget)
    {
        var dialogues = new List<Dialogue>();
        foreach (var doc in code)
        {
            var language = Language(doc.Id.Split('#')[0]);
            if (language is null)
                continue;
            var excerpt = string.Join('\n', doc.Text.Split('\n').Take(24)).Trim();
            if (excerpt.Length < 200)
                continue;
            var messages = new List<Message>
            {
                new("user", $"Which programming language is this?\n\n```\n{excerpt}\n```"),
                new("assistant", $"This is {language}."),
            };
            dialogues.Add(WithSystem(new Dialogue(doc.Source, doc.License, "language/" + doc.Id, messages)));
        }
        return Take(dialogues, budget);
    }

    private static string? Language(string path) => Path.GetExtension(path) switch
    {
        ".cs" => "C#",
        ".cu" => "CUDA C",
        ".py" => "Python",
        ".sh" => "a Bash script",
        ".fs" => "F#",
        ".vb" => "Visual Basic",
        ".js" => "JavaScript",
        ".css" => "CSS",
        ".html" => "HTML",
        ".razor" => "Razor (HTML with C#)",
        ".cshtml" => "Razor (HTML with C#)",
        ".xaml" => "XAML",
        ".targets" or ".props" or ".csproj" or ".fsproj" or ".vbproj" => "MSBuild XML",
        _ => null,
    };

    private static Dialogue WithSystem(Dialogue d) => Pick(d.Id, 3) != 0 ? d
        : d with { Messages = [new Message("system", SystemPrompts[Pick(d.Id + "/system", SystemPrompts.Length)]), .. d.Messages] };

    private static List<Dialogue> Take(List<Dialogue> dialogues, long budget)
    {
        var chosen = new List<Dialogue>();
        long total = 0;
        foreach (var d in dialogues.OrderBy(d => Hash(d.Id), StringComparer.Ordinal))
        {
            if (total >= budget)
                break;
            chosen.Add(d);
            total += d.Bytes;
        }
        return [.. chosen.OrderBy(d => d.Id, StringComparer.Ordinal)];
    }

    private static int Pick(string id, int n) => (int)(BitConverter.ToUInt32(SHA256.HashData(Encoding.UTF8.GetBytes(id))) % (uint)n);

    private static string Hash(string s) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s)));
}
