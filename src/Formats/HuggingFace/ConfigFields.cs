using System.Text.Json;
using System.Text.Json.Nodes;

namespace Converter.Formats.HuggingFace;

/// <summary>Typed access to config.json keys, with errors that name the file and the key (dotted for nested objects).</summary>
public sealed class ConfigFields(JsonObject json, string path, string prefix = "")
{
    public string Path => path;

    public ModelConfigException Error(string problem) => new(path, problem);

    /// <summary>A nested object's fields, or null when the key is absent or JSON null.</summary>
    public ConfigFields? Object(string key)
    {
        var node = Get(key);
        if (node == null)
            return null;
        if (node is not JsonObject obj)
            throw Error($"'{prefix}{key}' is {Describe(node)}, expected an object");
        return new ConfigFields(obj, path, prefix + key + ".");
    }

    public int RequiredInt(string key) => OptionalInt(key) ?? throw Error($"missing '{prefix}{key}'");

    public int RequiredPositiveInt(string key)
    {
        var value = RequiredInt(key);
        if (value <= 0)
            throw Error($"'{prefix}{key}' is {value}, expected a positive integer");
        return value;
    }

    public int? OptionalInt(string key)
    {
        var node = Get(key);
        if (node == null)
            return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i))
            return i;
        throw Error($"'{prefix}{key}' is {Describe(node)}, expected an integer");
    }

    public double RequiredDouble(string key) => OptionalDouble(key) ?? throw Error($"missing '{prefix}{key}'");

    public double? OptionalDouble(string key)
    {
        var node = Get(key);
        if (node == null)
            return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
            return v.GetValue<double>();
        throw Error($"'{prefix}{key}' is {Describe(node)}, expected a number");
    }

    public bool? OptionalBool(string key)
    {
        var node = Get(key);
        if (node == null)
            return null;
        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"'{prefix}{key}' is {Describe(node)}, expected true or false"),
        };
    }

    public string? OptionalString(string key)
    {
        var node = Get(key);
        if (node == null)
            return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
            return v.GetValue<string>();
        throw Error($"'{prefix}{key}' is {Describe(node)}, expected a string");
    }

    /// <summary>An integer or a list of integers (eos_token_id may be either); empty when absent.</summary>
    public IReadOnlyList<int> IntOrIntList(string key)
    {
        var node = Get(key);
        if (node is JsonArray array)
        {
            var result = new int[array.Count];
            for (var i = 0; i < array.Count; i++)
            {
                if (array[i] is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue(out result[i]))
                    throw Error($"'{prefix}{key}' holds {Describe(array[i])}, expected integers");
            }
            return result;
        }
        return OptionalInt(key) is { } single ? [single] : [];
    }

    /// <summary>A list of numbers; throws naming the key when absent or not numbers.</summary>
    public IReadOnlyList<double> RequiredDoubleList(string key)
    {
        var node = Get(key);
        if (node is not JsonArray array)
            throw Error(node == null ? $"missing '{prefix}{key}'" : $"'{prefix}{key}' is {Describe(node)}, expected a list of numbers");
        return array.Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            ? v.GetValue<double>()
            : throw Error($"'{prefix}{key}' holds {Describe(n)}, expected numbers")).ToArray();
    }

    /// <summary>A list of integers, or null when absent.</summary>
    public IReadOnlyList<int>? OptionalIntList(string key)
    {
        var node = Get(key);
        if (node == null)
            return null;
        if (node is not JsonArray array)
            throw Error($"'{prefix}{key}' is {Describe(node)}, expected a list of integers");
        return array.Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i)
            ? i
            : throw Error($"'{prefix}{key}' holds {Describe(n)}, expected integers")).ToArray();
    }

    /// <summary>Whether the key is present and not JSON null.</summary>
    public bool Has(string key) => Get(key) != null;

    public IReadOnlyList<string> StringList(string key)
    {
        var node = Get(key);
        if (node == null)
            return [];
        if (node is not JsonArray array)
            throw Error($"'{prefix}{key}' is {Describe(node)}, expected a list of strings");
        return array.Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? v.GetValue<string>()
            : throw Error($"'{prefix}{key}' holds {Describe(n)}, expected strings")).ToArray();
    }

    /// <summary>Absent keys and JSON null read the same: transformers writes null for "not set".</summary>
    private JsonNode? Get(string key) => json.TryGetPropertyValue(key, out var node) ? node : null;

    private static string Describe(JsonNode? node) => node == null ? "null" : node.ToJsonString();
}
