using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;

namespace Converter.Convert.Tests;

/// <summary>
/// A model cut to its first decoder layers, for conversions whose point does not need the rest: a conversion's time
/// is its weights', and a layer of a kind already converted tests nothing new in the conversion (the forward tests
/// run the whole models).
/// </summary>
internal static class LayerCut
{
    /// <summary>The config.json lists with one entry per layer, cut with the layers.</summary>
    private static readonly string[] PerLayerKeys = ["layer_types", "no_rope_layers"];

    /// <summary>
    /// A copy of <paramref name="model"/> in <paramref name="copy"/> with decoder layers [0, <paramref name="layers"/>):
    /// num_hidden_layers and the per-layer lists of config.json cut to match, those layers' tensors and every
    /// other tensor copied byte for byte into one model.safetensors, the other files (tokenizer, generation config)
    /// as they are.
    /// </summary>
    public static string FirstLayers(string model, string copy, int layers)
    {
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(model).Select(Path.GetFileName).OfType<string>()
                     .Where(f => f != ModelConfig.FileName && !f.Contains(".safetensors", StringComparison.Ordinal)))
            File.Copy(Path.Combine(model, file), Path.Combine(copy, file));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, ModelConfig.FileName)))!.AsObject();
        int had = config["num_hidden_layers"]!.GetValue<int>();
        if (layers < 1 || layers > had)
            throw new ArgumentOutOfRangeException(nameof(layers), $"{model} has {had} layers; cannot keep {layers}");
        config["num_hidden_layers"] = layers;
        foreach (var key in PerLayerKeys.Where(config.ContainsKey))
            config[key] = new JsonArray([.. config[key]!.AsArray().Take(layers).Select(n => n?.DeepClone())]);
        File.WriteAllText(Path.Combine(copy, ModelConfig.FileName), config.ToJsonString());

        using var reader = CheckpointReader.Open(model);
        var writer = new SafetensorsWriter();
        foreach (var name in reader.TensorNames.Where(n => LayerOf(n) is not { } layer || layer < layers))
            writer.Add(PendingTensor.CopyOf(reader, name));
        writer.Write(Path.Combine(copy, "model.safetensors"));
        return copy;
    }

    /// <summary>The decoder layer a tensor belongs to ("….layers.N.…"), or null for the embedding, norm and head.</summary>
    private static int? LayerOf(string tensor)
    {
        const string Marker = ".layers.";
        int at = tensor.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0)
            return null;
        int start = at + Marker.Length, end = tensor.IndexOf('.', start);
        return int.Parse(tensor.AsSpan(start, (end < 0 ? tensor.Length : end) - start), System.Globalization.CultureInfo.InvariantCulture);
    }
}
