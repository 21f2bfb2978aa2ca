using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;

namespace Converter.Eval.Codebooks.Screening;

/// <summary>
/// What a multiplier screen measures: one codebook family, at which K, on how many N(0,1) tiles of which seed. Two
/// screens with equal settings measure every candidate on the same tiles, so their results can share one journal.
/// </summary>
public sealed record ScreenSettings(CodebookKind Kind, IReadOnlyList<int> Bits, int Tiles, int Seed)
{
    /// <summary>Fewest tiles for a per-tile spread worth an interval (t with 7 degrees of freedom is 2.36).</summary>
    public const int MinTiles = 8;

    /// <summary>The family's name as the CLI spells it.</summary>
    public string Codebook => CodebookRegistry.Get(Kind).Name;

    /// <summary>The multiplier exllamav3 locks for the family, the baseline of every paired comparison.</summary>
    public CodebookSpec Reference => CodebookSpec.Default(Kind);

    /// <summary>Throws <see cref="ArgumentException"/> for settings no screen can run.</summary>
    public void Validate()
    {
        if (Kind == CodebookKind.ThreeInst)
            throw new ArgumentException($"{Codebook} takes no multiplier (its LCG constants are fixed, docs/exl3-format.md §1.2)");
        if (Bits.Count == 0)
            throw new ArgumentException("a screen needs at least one K");
        foreach (var k in Bits)
            TileLayout.CheckBits(k);
        if (Tiles < MinTiles)
            throw new ArgumentException($"a screen needs at least {MinTiles} tiles for its intervals");
    }

    /// <summary>One line naming the settings, for logs and the journal's mismatch message.</summary>
    public string Describe() => $"{Codebook} against {Reference.MultiplierHex}, K {string.Join(',', Bits)}, {Tiles} tiles, seed {Seed}";

    public bool SameAs(ScreenSettings other) =>
        Kind == other.Kind && Bits.SequenceEqual(other.Bits) && Tiles == other.Tiles && Seed == other.Seed;
}
