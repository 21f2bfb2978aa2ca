namespace Converter.Trellis.Codebooks;

/// <summary>One codebook's declaration: what option parsing, help text, inspect and the writer need to know about it.</summary>
/// <param name="Kind">The codebook.</param>
/// <param name="Name">The CLI and quantization_config name (docs/exl3-format.md §4.5).</param>
/// <param name="DefaultMultiplier">The multiplier exllamav3 locks at HEAD (§1.2–§1.4).</param>
/// <param name="MultiplierMustBeOdd">MCG is a pure multiplicative generator, so an even multiplier loses states.</param>
/// <param name="MarkerTensor">Suffix of the 0-dim int32 tensor that marks the codebook (§4.1), or null for 3INST.</param>
/// <param name="Summary">One line for --help.</param>
public sealed record CodebookDefinition(
    CodebookKind Kind,
    string Name,
    uint DefaultMultiplier,
    bool MultiplierMustBeOdd,
    string? MarkerTensor,
    string Summary);

/// <summary>The table of codebooks: the single place that lists them, so parsing, help and tests cannot drift apart.</summary>
public static class CodebookRegistry
{
    /// <summary>3INST's LCG multiplier 89226354 (§1.2); its increment is <see cref="ThreeInstIncrement"/>.</summary>
    public const uint ThreeInstMultiplier = 0x05517C72;

    /// <summary>3INST's LCG increment 64248484 (§1.2).</summary>
    public const uint ThreeInstIncrement = 0x03D45AA4;

    public static IReadOnlyList<CodebookDefinition> All { get; } =
    [
        new(CodebookKind.ThreeInst, "3inst", ThreeInstMultiplier, false, null,
            "QTIP LCG x*89226354+64248484, two fp16 halves summed (the original EXL3 codebook)"),
        new(CodebookKind.Mcg, "mcg", 0xCBAC1FED, true, "mcg",
            "MCG x*mult, two fp16 halves summed (exllamav3 default 2025-10 to 2026-07)"),
        new(CodebookKind.Mul1, "mul1", 0x83DCD12D, false, "mul1",
            "x*mult, byte sum, one fp16 FMA (exllamav3 default since 2026-07)"),
    ];

    public static CodebookDefinition Get(CodebookKind kind) => All[(int)kind];

    public static bool TryGet(string name, out CodebookDefinition definition)
    {
        foreach (var d in All)
        {
            if (string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                definition = d;
                return true;
            }
        }
        definition = null!;
        return false;
    }

    public static string Names => string.Join(", ", All.Select(d => d.Name));
}
