using System.Globalization;
using System.Text;
using Converter.Trellis.Codebooks;

namespace Converter.Conversion.Pipeline;

/// <summary>What the model card of a conversion states.</summary>
/// <param name="SourceModel">The source model directory as given on the command line.</param>
/// <param name="BaseModel">The source's Hugging Face id when known (<see cref="BaseModelId"/>), else null.</param>
/// <param name="Architecture">config.json's architecture (e.g. LlamaForCausalLM).</param>
/// <param name="Bits">Average bits per weight of the budgeted tensors, as quantization_config.bits.</param>
/// <param name="BitsWithScales">The same including the suh/svh scales (§4.3).</param>
/// <param name="CalibrationText">The calibration text's name (a path, or the built-in text).</param>
/// <param name="LicenseLines">The license lines of the source card's front matter, carried over as they are.</param>
/// <param name="EvalSummary">A markdown paragraph with the evaluation against the source, when one ran; null leaves the section out.</param>
public sealed record ModelCardFacts(
    string SourceModel,
    string? BaseModel,
    string Architecture,
    double Bits,
    double BitsWithScales,
    int HeadBits,
    CodebookSpec Codebook,
    string CalibrationText,
    int CalRows,
    int CalCols,
    int Seed,
    string Converter,
    string Exl3Version,
    DateOnly Date,
    IReadOnlyList<string> LicenseLines,
    string? EvalSummary = null);

/// <summary>
/// The README.md written into a converted model's folder, as published EXL3 quantizations carry one: YAML front
/// matter the Hugging Face Hub reads (library_name, base_model when known, tags), then what was converted and how.
/// Everything in it but the date follows from the inputs, so a resumed conversion writes the same card.
/// </summary>
public static class ModelCard
{
    public const string FileName = "README.md";

    public static string Render(ModelCardFacts f)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("---\n");
        foreach (var line in f.LicenseLines)
            sb.Append(line).Append('\n');
        if (f.BaseModel is { } id)
            sb.Append("base_model: ").Append(id).Append("\nbase_model_relation: quantized\n");
        sb.Append("library_name: exllamav3\npipeline_tag: text-generation\ntags:\n- exl3\n- trellis\n- quantized\n---\n\n");

        string name = f.BaseModel?.Split('/')[^1] ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(f.SourceModel)));
        sb.Append(inv, $"# {name} EXL3 {f.Bits:0.00} bpw\n\n");
        sb.Append($"`{f.SourceModel}`{(f.BaseModel is null ? "" : $" ({f.BaseModel})")} converted by {f.Converter} to the EXL3 layout of exllamav3 {f.Exl3Version}, ");
        sb.Append("which exllamav3 and TabbyAPI load.\n\n");
        if (!f.Codebook.IsDefaultMultiplier)
        {
            sb.Append($"**Warning: stock exllamav3 cannot decode this model.** {Capitalized(NonstandardMultiplier.Consequence(f.Codebook))}. ");
            sb.Append($"It is marked in `quantization_config.{NonstandardMultiplier.ConfigKey}`; only trellis reads it correctly.\n\n");
        }

        sb.Append("| | |\n|---|---|\n");
        sb.Append($"| source model | `{f.SourceModel}`{(f.BaseModel is null ? "" : $" ([{f.BaseModel}](https://huggingface.co/{f.BaseModel}))")} |\n");
        sb.Append($"| architecture | `{f.Architecture}` |\n");
        sb.Append(inv, $"| bits per weight | {f.Bits:0.00} ({f.BitsWithScales:0.000} with the suh/svh scales) |\n");
        sb.Append(inv, $"| head bits | {(f.HeadBits == 16 ? "16 (fp16, not quantized)" : f.HeadBits.ToString(inv))} |\n");
        sb.Append($"| codebook | {f.Codebook.Name}" + (f.Codebook.Kind == CodebookKind.ThreeInst ? " |\n" : $", multiplier {f.Codebook.MultiplierHex}{(f.Codebook.IsDefaultMultiplier ? "" : " (non-standard)")} |\n"));
        sb.Append(inv, $"| calibration | {f.CalRows} rows × {f.CalCols} tokens of {f.CalibrationText}, seed {f.Seed} |\n");
        sb.Append($"| converter | {f.Converter} |\n");
        sb.Append(inv, $"| date | {f.Date:yyyy-MM-dd} |\n\n");

        if (f.EvalSummary is { } eval)
            sb.Append("## Evaluation\n\n").Append(eval.TrimEnd()).Append("\n\n");
        sb.Append("Per-tensor bits, proxy errors and timings are in `trellis-convert.json`. To measure what the conversion lost against the original: ");
        sb.Append($"`trellis eval THIS_FOLDER --reference {f.SourceModel}`.\n");
        return sb.ToString();
    }

    private static string Capitalized(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
