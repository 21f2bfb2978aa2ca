using System.Text.Json.Nodes;
using Converter.Formats.Safetensors;

namespace Converter.TestSupport;

/// <summary>Where a Gemma 3 multimodal checkpoint keeps its language model.</summary>
public enum Gemma3Layout
{
    /// <summary>The published checkpoints: language_model.model.*, language_model.lm_head, vision_tower.*, multi_modal_projector.*.</summary>
    Hub,

    /// <summary>As transformers ≥ 4.52 holds the model: model.language_model.*, lm_head, model.vision_tower.*, model.multi_modal_projector.*.</summary>
    Saved,
}

/// <summary>
/// A Gemma3ForConditionalGeneration folder made from ../shared's rand-gemma3 (a Gemma3ForCausalLM): the text tensors
/// renamed to the layout asked for, the config wrapped as transformers writes a Gemma3Config (text_config with the
/// text keys, a small vision_config, mm_tokens_per_image, and the top-level layer_types exllamav3 reads), one tensor
/// each for the vision tower and the projector that no text module reads, and a preprocessor_config.json. Its
/// language model is rand-gemma3's, so rand-gemma3's transformers reference applies to it unchanged.
/// tools/make-gemma3-cg-fixture.py makes the same shape of folder with a complete tiny vision tower.
/// </summary>
public static class Gemma3MultimodalFixture
{
    /// <summary>Written as-is by the fixture and expected back unchanged from a conversion.</summary>
    public static string VisionTensor(Gemma3Layout layout) => layout == Gemma3Layout.Hub ? "vision_tower.x.weight" : "model.vision_tower.x.weight";

    public static string ProjectorTensor(Gemma3Layout layout) =>
        layout == Gemma3Layout.Hub ? "multi_modal_projector.mm_input_projection_weight" : "model.multi_modal_projector.mm_input_projection_weight";

    /// <summary>The language model's module prefix and head name in <paramref name="layout"/>.</summary>
    public static (string Model, string LmHead) TextNames(Gemma3Layout layout) =>
        layout == Gemma3Layout.Hub ? ("language_model.model", "language_model.lm_head") : ("model.language_model", "lm_head");

    public const string PreprocessorConfig = "preprocessor_config.json";

    /// <summary>Writes the folder into <paramref name="directory"/> (created if needed) from the text model in <paramref name="textModelDir"/>.</summary>
    public static void Write(string textModelDir, string directory, Gemma3Layout layout)
    {
        Directory.CreateDirectory(directory);
        var (model, lmHead) = TextNames(layout);
        using (var source = CheckpointReader.Open(textModelDir))
        {
            var writer = new SafetensorsWriter();
            foreach (var name in source.TensorNames)
            {
                string renamed = name.StartsWith("model.", StringComparison.Ordinal) ? model + name["model".Length..]
                    : name.StartsWith("lm_head.", StringComparison.Ordinal) ? lmHead + name["lm_head".Length..]
                    : throw new InvalidDataException($"{textModelDir}: unexpected tensor {name} in a Gemma3ForCausalLM checkpoint");
                writer.Add(PendingTensor.CopyOf(source, name, renamed));
            }
            // Distinct bf16 bit patterns, so a test can tell a byte-exact copy from any conversion.
            writer.Add(VisionTensor(layout), DType.BF16, [4, 8], Enumerable.Range(0, 32).Select(i => (ushort)(0x3C00 + 37 * i)).ToArray());
            writer.Add(ProjectorTensor(layout), DType.BF16, [32, 256], Enumerable.Range(0, 32 * 256).Select(i => (ushort)(0xBC00 + i % 251)).ToArray());
            writer.Write(Path.Combine(directory, CheckpointFiles.SingleFile));
        }

        var text = JsonNode.Parse(File.ReadAllText(Path.Combine(textModelDir, "config.json")))!.AsObject();
        text.Remove("architectures");
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("Gemma3ForConditionalGeneration"),
            ["model_type"] = "gemma3",
            ["dtype"] = text["dtype"]?.DeepClone(),
            // exllamav3 1.4.1 reads Gemma 3's layer_types from the top level only, transformers from text_config.
            ["layer_types"] = text["layer_types"]!.DeepClone(),
            ["mm_tokens_per_image"] = 4,
            ["boi_token_index"] = 255999,
            ["eoi_token_index"] = 256000,
            ["image_token_index"] = 262144,
            ["initializer_range"] = 0.02,
            ["text_config"] = text,
            ["vision_config"] = new JsonObject
            {
                ["model_type"] = "siglip_vision_model",
                ["hidden_size"] = 32,
                ["intermediate_size"] = 64,
                ["num_hidden_layers"] = 1,
                ["num_attention_heads"] = 2,
                ["patch_size"] = 16,
                ["image_size"] = 64,
                ["vision_use_head"] = false,
            },
            ["transformers_version"] = text["transformers_version"]?.DeepClone(),
        };
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));

        File.WriteAllText(Path.Combine(directory, PreprocessorConfig), """
            {
              "image_processor_type": "Gemma3ImageProcessor",
              "image_mean": [0.5, 0.5, 0.5],
              "image_std": [0.5, 0.5, 0.5],
              "resample": 2,
              "rescale_factor": 0.00392156862745098,
              "size": {"height": 64, "width": 64}
            }
            """);
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            File.Copy(Path.Combine(textModelDir, file), Path.Combine(directory, file), overwrite: true);
    }
}
