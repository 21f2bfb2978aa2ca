using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Converter.Formats.Tokenizers;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Tokenizers;

/// <summary>A string and the ids the Hugging Face tokenizer gives it, as tests/data/reference/*.tokcases.json holds them.</summary>
public sealed record ReferenceCase(string Text, int[] Ids, int[] IdsNoSpecial);

/// <summary>The test models' tokenizers and their reference cases.</summary>
internal static class TestTokenizers
{
    /// <summary>Every model with a tokcases.json reference; small-qwen2's tokenizer lives only in ../shared.</summary>
    public static readonly string[] Models = ["tiny-llama", "rand-llama31", "rand-mistral", "rand-qwen3", "small-qwen2"];

    /// <summary>The reference files' member naming (ids_no_special …).</summary>
    public static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private static readonly ConcurrentDictionary<string, Tokenizer> Loaded = new();

    /// <summary>The model's tokenizer.json; ignores the test when it is small-qwen2 and ../shared is absent.</summary>
    public static string TokenizerPath(string model) => model switch
    {
        "tiny-llama" => Path.Combine(RepoPaths.SampleModel, "tokenizer.json"),
        "small-qwen2" => Path.Combine(RepoPaths.RequireSharedModel(model), "tokenizer.json"),
        _ => Path.Combine(RepoPaths.TestModel(model), "tokenizer.json"),
    };

    public static Tokenizer Load(string model) => Loaded.GetOrAdd(model, m => Tokenizer.FromFile(TokenizerPath(m)));

    /// <summary>The model's reference cases (all five references are in the repository; only small-qwen2's model is not).</summary>
    public static IReadOnlyList<ReferenceCase> ReferenceCases(string model)
    {
        var path = Path.Combine(RepoPaths.Reference, model + ".tokcases.json");
        if (!File.Exists(path))
            path = RepoPaths.RequireSharedReference(model + ".tokcases.json");
        return JsonSerializer.Deserialize<List<ReferenceCase>>(File.ReadAllText(path), SnakeCase)
            ?? throw new InvalidDataException(path + " is empty");
    }

    /// <summary>
    /// <paramref name="baseJson"/> with <paramref name="overrideObject"/>'s members replacing its own, except
    /// "model", whose members replace the base model's one by one (how hf-cases.json stores its variants).
    /// </summary>
    public static string ApplyOverride(string baseJson, JsonObject? overrideObject)
    {
        var root = JsonNode.Parse(baseJson)!.AsObject();
        if (overrideObject == null)
            return baseJson;
        foreach (var (name, value) in overrideObject)
        {
            if (name == "model")
            {
                var model = root["model"]!.AsObject();
                foreach (var (member, v) in value!.AsObject())
                    model[member] = v?.DeepClone();
            }
            else
            {
                root[name] = value?.DeepClone();
            }
        }
        return root.ToJsonString();
    }

    /// <summary>A compact, readable rendering of a string for test names.</summary>
    public static string Display(string text, int max = 40) =>
        JsonSerializer.Serialize(text.Length > max ? text[..max] + "…" : text,
            new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
