using System.Text.Json;
using System.Text.Json.Nodes;
using Converter.Exl3;
using Converter.Formats.HuggingFace;
using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.Trellis.Codebooks;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// Assembles the output model from the per-module files in the work directory (docs/exl3-format.md §4.5–§4.6):
/// tensors grouped per top-level module in model order and sharded without splitting a module, then the source tensors
/// copied unchanged, config.json with quantization_config, quantization_config.json with tensor_storage (of the
/// modules' tensors, as exllamav3 lists its text model's), and every non-weight file of the source.
/// </summary>
public static class OutputCompiler
{
    /// <summary>Files never copied from the source (§4.6): weights, the config we rewrite, the index.</summary>
    private static readonly string[] SkippedExtensions = [".safetensors", ".bin", ".ckpt", ".pth", ".pt"];

    /// <param name="copied">Tensors written after the modules' as they are, each free to go to any shard.</param>
    public static CheckpointWriteResult Compile(string sourceDir, IReadOnlyList<string> moduleFiles, IReadOnlyList<PendingTensor> copied, string outDir,
        long shardBytes, JsonObject sourceConfig, JsonObject quantizationConfig)
    {
        Directory.CreateDirectory(outDir);
        var readers = moduleFiles.Select(SafetensorsFile.Open).ToList();
        try
        {
            var writer = new ShardedSafetensorsWriter(shardBytes);
            foreach (var reader in readers)
                writer.AddModule(reader.TensorNames.Select(name => PendingTensor.CopyOf(reader, name)));
            foreach (var tensor in copied)
                writer.AddModule([tensor]);
            var result = writer.Write(outDir);

            var config = (JsonObject)sourceConfig.DeepClone();
            config["quantization_config"] = MergeQuantizationConfig(config["quantization_config"] as JsonObject, quantizationConfig);
            AtomicFile.WriteAllText(Path.Combine(outDir, "config.json"), config.ToJsonString(Indented));

            var withStorage = (JsonObject)config["quantization_config"]!.DeepClone();
            withStorage["tensor_storage"] = TensorStorage(readers);
            AtomicFile.WriteAllText(Path.Combine(outDir, "quantization_config.json"), withStorage.ToJsonString(Indented));

            CopyNonWeightFiles(sourceDir, outDir);
            return result;
        }
        finally
        {
            foreach (var r in readers)
                r.Dispose();
        }
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>
    /// Adds <paramref name="key"/> to the quantization_config of a compiled output, in config.json and in
    /// quantization_config.json alike (atomically each), for what is decided after the output is compiled.
    /// </summary>
    public static void AddQuantizationKey(string outDir, string key, JsonNode value)
    {
        foreach (var (file, nested) in new[] { ("config.json", true), ("quantization_config.json", false) })
        {
            var path = Path.Combine(outDir, file);
            var root = ModelConfig.ReadJsonObject(path);
            var target = nested ? root["quantization_config"] as JsonObject : root;
            if (target is null)
                throw new InvalidDataException($"{path}: no quantization_config to add {key} to");
            target[key] = value.DeepClone();
            AtomicFile.WriteAllText(path, root.ToJsonString(Indented));
        }
    }

    /// <summary>§4.5: keep an existing exl3 dict (updating bits, head_bits, codebook); nest any other as original_quantization_config.</summary>
    private static JsonObject MergeQuantizationConfig(JsonObject? existing, JsonObject ours)
    {
        var merged = (JsonObject)ours.DeepClone();
        if (existing is null)
            return merged;
        if (existing["quant_method"]?.GetValue<string>() == "exl3")
        {
            var kept = (JsonObject)existing.DeepClone();
            foreach (var key in new[] { "bits", "head_bits", "codebook" })
                kept[key] = merged[key]?.DeepClone();
            // The mark says what this output is, so it follows ours, never the source's.
            kept.Remove(NonstandardMultiplier.ConfigKey);
            if (merged[NonstandardMultiplier.ConfigKey] is { } mark)
                kept[NonstandardMultiplier.ConfigKey] = mark.DeepClone();
            return kept;
        }
        merged["original_quantization_config"] = existing.DeepClone();
        return merged;
    }

    /// <summary>tensor_storage: per leaf module, its stored tensors and, for EXL3 linears, format, K and multiplier.</summary>
    private static JsonObject TensorStorage(IReadOnlyList<SafetensorsFile> readers)
    {
        var storage = new JsonObject();
        foreach (var reader in readers)
        {
            foreach (var group in reader.Tensors.GroupBy(t => ModuleKey(t.Name)))
            {
                var stored = new JsonObject();
                foreach (var t in group)
                {
                    stored[t.Name] = new JsonObject
                    {
                        ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                        ["n_bytes"] = t.ByteLength,
                        ["dtype"] = "torch." + TorchDtype(t.DType),
                    };
                }
                var entry = new JsonObject { ["stored_tensors"] = stored };
                if (Exl3LinearReader.IsStoredIn(reader, group.Key))
                {
                    entry["quant_format"] = "exl3";
                    entry["bits_per_weight"] = Exl3LinearReader.BitsOf(reader, group.Key);
                    var codebook = Exl3CodebookMarker.Read(reader, group.Key);
                    if (Exl3CodebookMarker.TensorOf(codebook) is { } marker)
                        entry[marker + "_multiplier"] = codebook.Multiplier;
                }
                storage[group.Key] = entry;
            }
        }
        return storage;
    }

    /// <summary>The module a tensor belongs to: its name without the last component (…q_proj.trellis → …q_proj).</summary>
    private static string ModuleKey(string tensor)
    {
        int dot = tensor.LastIndexOf('.');
        return dot < 0 ? tensor : tensor[..dot];
    }

    private static string TorchDtype(DType d) => d switch
    {
        DType.F32 => "float32",
        DType.F16 => "float16",
        DType.BF16 => "bfloat16",
        DType.I8 => "int8",
        DType.I16 => "int16",
        DType.I32 => "int32",
        DType.I64 => "int64",
        DType.U8 => "uint8",
        DType.BOOL => "bool",
        DType.F8_E4M3 => "float8_e4m3fn",
        _ => d.ToString().ToLowerInvariant(),
    };

    /// <summary>True for a source file the output gets a copy of (§4.6): not a weight file, the config or the index.</summary>
    public static bool IsCopied(string file)
    {
        var name = Path.GetFileName(file);
        return name is not ("config.json" or "model.safetensors.index.json") && !SkippedExtensions.Contains(Path.GetExtension(name), StringComparer.OrdinalIgnoreCase);
    }

    private static void CopyNonWeightFiles(string sourceDir, string outDir)
    {
        foreach (var file in Directory.EnumerateFiles(sourceDir))
        {
            var name = Path.GetFileName(file);
            if (!IsCopied(file))
                continue;
            AtomicFile.Write(Path.Combine(outDir, name), stream =>
            {
                using var source = File.OpenRead(file);
                source.CopyTo(stream);
            });
        }
    }
}
