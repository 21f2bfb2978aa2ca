using System.Text.Json;
using System.Text.Json.Nodes;

namespace Converter.Formats.HuggingFace;

/// <summary>
/// Typed access to config.json keys, with errors that name the file and the key (dotted for nested objects). A key
/// absent here may be looked up in a fallback object (<see cref="WithFallback"/>): a multimodal wrapper's text_config
/// falls back to the wrapper's top level.
/// </summary>
public sealed class ConfigFields(JsonObject json, string path, string prefix = "", ConfigFields? fallback = null)
{
    public string Path => path;

    public ModelConfigException Error(string problem) => new(path, problem);

    /// <summary>These fields, reading a key that is absent (or null) here from <paramref name="fallbackFields"/>.</summary>
    public ConfigFields WithFallback(ConfigFields fallbackFields) => new(json, path, prefix, fallbackFields);

    /// <summary>A nested object's fields, or null when the key is absent or JSON null.</summary>
    public ConfigFields? Object(string key)
    {
        var (node, name) = Find(key);
        if (node == null)
            return null;
        if (node is not JsonObject obj)
            throw Error($"'{name}' is {Describe(node)}, expected an object");
        return new ConfigFields(obj, path, name + ".");
    }

    public int RequiredInt(string key) => OptionalInt(key) ?? throw Error($"missing '{prefix}{key}'");

    public int RequiredPositiveInt(string key)
    {
        var value = RequiredInt(key);
        if (value <= 0)
            throw Error($"'{Find(key).Name}' is {value}, expected a positive integer");
        return value;
    }

    /// <summary>
    /// A positive count of things the model builds one object each for (layers, experts), at most
    /// <paramref name="max"/>: a mistyped or hostile count of two billion must fail here, not after minutes of building.
    /// </summary>
    public int RequiredCount(string key, int max)
    {
        var value = RequiredPositiveInt(key);
        if (value > max)
            throw Error($"'{Find(key).Name}' is {value}, more than the {max:N0} this toolchain accepts");
        return value;
    }

    /// <summary>A positive width (hidden size, heads, vocabulary) of at most <see cref="ModelConfig.MaxDimension"/>.</summary>
    public int RequiredDimension(string key) => RequiredCount(key, ModelConfig.MaxDimension);

    public int? OptionalInt(string key)
    {
        var (node, name) = Find(key);
        if (node == null)
            return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i))
            return i;
        throw Error($"'{name}' is {Describe(node)}, expected an integer");
    }

    public double RequiredDouble(string key) => OptionalDouble(key) ?? throw Error($"missing '{prefix}{key}'");

    public double? OptionalDouble(string key)
    {
        var (node, name) = Find(key);
        if (node == null)
            return null;
        // JSON numbers beyond double's range (1e400) read as infinity, which no setting can mean.
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() is var d && double.IsFinite(d))
            return d;
        throw Error($"'{name}' is {Describe(node)}, expected a finite number");
    }

    public bool? OptionalBool(string key)
    {
        var (node, name) = Find(key);
        if (node == null)
            return null;
        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"'{name}' is {Describe(node)}, expected true or false"),
        };
    }

    public string? OptionalString(string key)
    {
        var (node, name) = Find(key);
        if (node == null)
            return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
            return v.GetValue<string>();
        throw Error($"'{name}' is {Describe(node)}, expected a string");
    }

    /// <summary>An integer or a list of integers (eos_token_id may be either); empty when absent.</summary>
    public IReadOnlyList<int> IntOrIntList(string key)
    {
        var (node, name) = Find(key);
        if (node is JsonArray array)
        {
            var result = new int[array.Count];
            for (var i = 0; i < array.Count; i++)
            {
                if (array[i] is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue(out result[i]))
                    throw Error($"'{name}' holds {Describe(array[i])}, expected integers");
            }
            return result;
        }
        return OptionalInt(key) is { } single ? [single] : [];
    }

    /// <summary>A list of numbers; throws naming the key when absent or not numbers.</summary>
    public IReadOnlyList<double> RequiredDoubleList(string key)
    {
        var (node, name) = Find(key);
        if (node is not JsonArray array)
            throw Error(node == null ? $"missing '{name}'" : $"'{name}' is {Describe(node)}, expected a list of numbers");
        return array.Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() is var d && double.IsFinite(d)
            ? d
            : throw Error($"'{name}' holds {Describe(n)}, expected finite numbers")).ToArray();
    }

    /// <summary>A list of integers, or null when absent.</summary>
    public IReadOnlyList<int>? OptionalIntList(string key)
    {
        var (node, name) = Find(key);
        if (node == null)
            return null;
        if (node is not JsonArray array)
            throw Error($"'{name}' is {Describe(node)}, expected a list of integers");
        return array.Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i)
            ? i
            : throw Error($"'{name}' holds {Describe(n)}, expected integers")).ToArray();
    }

    /// <summary>Whether the key is present and not JSON null.</summary>
    public bool Has(string key) => Find(key).Node != null;

    public IReadOnlyList<string> StringList(string key)
    {
        var (node, name) = Find(key);
        if (node == null)
            return [];
        if (node is not JsonArray array)
            throw Error($"'{name}' is {Describe(node)}, expected a list of strings");
        return array.Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? v.GetValue<string>()
            : throw Error($"'{name}' holds {Describe(n)}, expected strings")).ToArray();
    }

    /// <summary>
    /// The key's value and its dotted name for errors, here or else in the fallback. Absent keys and JSON null read the
    /// same: transformers writes null for "not set".
    /// </summary>
    private (JsonNode? Node, string Name) Find(string key) =>
        json.TryGetPropertyValue(key, out var node) && node != null ? (node, prefix + key)
        : fallback?.Find(key) is ({ } found, var name) ? (found, name)
        : (null, prefix + key);

    private static string Describe(JsonNode? node) => node == null ? "null" : node.ToJsonString();
}
