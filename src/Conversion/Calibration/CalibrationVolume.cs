using Converter.Formats.HuggingFace;

namespace Converter.Conversion.Calibration;

/// <summary>Calibration rows × tokens per row, and how they were chosen.</summary>
/// <param name="Rule">"model" when scaled to the model by <see cref="CalibrationVolume.For"/>, "given" when both came from the command line, "model+given" when one did.</param>
public sealed record CalibrationVolumeChoice(int Rows, int Cols, string Rule);

/// <summary>
/// The default calibration volume, scaled to the model. A linear layer's Hessian is estimated from the tokens that
/// pass through it, and its size grows with the layer's input width, so the token count scales with the hidden size:
/// <see cref="TokensPerHiddenUnit"/> tokens per hidden unit, exllamav3's 250 rows × 2048 tokens = 512,000 tokens at
/// hidden 4096 (the 7–8B class: Llama-3-8B, Mistral-7B), which is also the cap (exllamav3 uses that volume for every
/// model; beyond it the cost grows linearly while the Hessians are already well conditioned). The floor is 128 × 512
/// = 65,536 tokens, the volume the sample model and the published comparisons use (DESIGN "Targets"), so a small model
/// is never calibrated on less nor converts slower than before. Row length follows the volume, the power of two
/// nearest to tokens / 250 within 512..2048 (longer rows calibrate deeper positions of the context; a small model
/// gets more, shorter rows), never past max_position_embeddings.
/// </summary>
/// <example>hidden 256 (tiny-llama) → 128 × 512; 896 → 219 × 512; 1536 → 188 × 1024; 2048 → 250 × 1024; 3584 → 219 × 2048; ≥ 4096 → 250 × 2048.</example>
public static class CalibrationVolume
{
    public const int TokensPerHiddenUnit = 125;
    public const int MinTokens = 128 * 512;
    public const int MaxTokens = 250 * 2048;
    public const int MinCols = 512;
    public const int MaxCols = 2048;

    /// <summary>Rows per row length the rule aims at: the length is the power of two nearest to tokens / 250.</summary>
    private const int TargetRows = 250;

    public static (int Rows, int Cols) For(int hiddenSize, int maxPositions)
    {
        long tokens = Math.Clamp((long)TokensPerHiddenUnit * hiddenSize, MinTokens, MaxTokens);
        int cols = 1 << (int)Math.Round(Math.Log2((double)tokens / TargetRows));
        cols = Math.Min(Math.Clamp(cols, MinCols, MaxCols), Math.Max(16, maxPositions));
        return ((int)((tokens + cols - 1) / cols), cols);
    }

    /// <summary>The volume for a model, with what the command line gave taking precedence, each independently.</summary>
    public static CalibrationVolumeChoice Choose(int? rows, int? cols, ModelConfig config)
    {
        var (ruleRows, ruleCols) = For(config.HiddenSize, config.MaxPositionEmbeddings);
        string rule = (rows, cols) switch
        {
            (null, null) => "model",
            (not null, not null) => "given",
            _ => "model+given",
        };
        return new CalibrationVolumeChoice(rows ?? ruleRows, cols ?? ruleCols, rule);
    }
}
