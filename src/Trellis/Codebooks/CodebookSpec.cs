using System.Globalization;

namespace Converter.Trellis.Codebooks;

/// <summary>A codebook with its multiplier, e.g. <c>mcg:0xFF7A83E5</c>. For 3INST the multiplier is the LCG's.</summary>
public readonly record struct CodebookSpec(CodebookKind Kind, uint Multiplier)
{
    public CodebookDefinition Definition => CodebookRegistry.Get(Kind);

    public string Name => Definition.Name;

    public bool IsDefaultMultiplier => Multiplier == Definition.DefaultMultiplier;

    public static CodebookSpec Default(CodebookKind kind) => new(kind, CodebookRegistry.Get(kind).DefaultMultiplier);

    /// <summary>Parses <c>name</c> or <c>name:0xHEX</c> (decimal also accepted); throws <see cref="FormatException"/> with a user-facing message.</summary>
    public static CodebookSpec Parse(string text)
    {
        var parts = text.Trim().Split(':', 2);
        if (!CodebookRegistry.TryGet(parts[0], out var def))
            throw new FormatException($"unknown codebook '{parts[0]}' (expected one of {CodebookRegistry.Names})");
        if (parts.Length == 1)
            return new CodebookSpec(def.Kind, def.DefaultMultiplier);
        if (def.Kind == CodebookKind.ThreeInst)
            throw new FormatException("3inst takes no multiplier (its LCG constants are fixed, docs/exl3-format.md §1.2)");
        var multiplier = ParseMultiplier(parts[1]);
        var spec = new CodebookSpec(def.Kind, multiplier);
        spec.Validate();
        return spec;
    }

    /// <summary>Parses <c>0xHEX</c> or a decimal 32-bit unsigned value.</summary>
    public static uint ParseMultiplier(string text)
    {
        var t = text.Trim();
        bool ok = t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            : uint.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        if (!ok || t.Length == 0)
            throw new FormatException($"malformed multiplier '{text}' (expected 0x followed by up to 8 hex digits, or a decimal 32-bit value)");
        return value;
    }

    public void Validate()
    {
        if (Definition.MultiplierMustBeOdd && (Multiplier & 1) == 0)
            throw new FormatException($"{Name} multiplier 0x{Multiplier:X8} is even; an MCG needs an odd multiplier to visit all states");
        if (Multiplier == 0)
            throw new FormatException($"{Name} multiplier must not be zero");
    }

    public override string ToString() => Kind == CodebookKind.ThreeInst ? Name : $"{Name}:0x{Multiplier:X8}";

    public string MultiplierHex => $"0x{Multiplier:X8}";
}
