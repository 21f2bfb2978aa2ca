namespace Converter.Models.Architectures;

/// <summary>
/// Gemma 3's multimodal checkpoints (Gemma3ForConditionalGeneration, model_type gemma3: the published 4B, 12B and 27B),
/// converted for their language model, which is Gemma 3's text model (<see cref="Gemma.Gemma3Text"/>); its keys are
/// text_config's, then the top level's (<see cref="Formats.HuggingFace.ModelConfig.Fields"/>). This is the only Gemma 3
/// form exllamav3 1.4.1 loads. The vision tower and the projector are not read by any module, so the converter copies
/// them unchanged.
/// </summary>
internal static class Gemma3Multimodal
{
    /// <summary>The published checkpoints' layout, the one exllamav3 reads (language_model.model.*, language_model.lm_head).</summary>
    private static readonly TensorNames Hub = new("language_model.model", "language_model.lm_head");

    /// <summary>
    /// transformers ≥ 4.52 holds the model as model.language_model, model.vision_tower, model.multi_modal_projector
    /// and lm_head, and checkpoints saved from it may keep those names. They are written back in the hub layout:
    /// Gemma3ForConditionalGeneration's _checkpoint_conversion_mapping reversed, so the whole output, vision tower
    /// included, is in the layout exllamav3 and every transformers version read.
    /// </summary>
    private static readonly TensorNames Saved = new("model.language_model", "lm_head")
    {
        WrittenRenames =
        [
            new("model.language_model", "language_model.model"),
            new("lm_head", "language_model.lm_head"),
            new("model.vision_tower", "vision_tower"),
            new("model.multi_modal_projector", "multi_modal_projector"),
        ],
    };

    public static ArchitectureDefinition Definition { get; } = new("Gemma3ForConditionalGeneration", "gemma3", config =>
        Gemma.Gemma3Text(config, "Gemma3ForConditionalGeneration") with { Names = CheckpointLayout.Choose(config, Hub, Saved) });
}
