using System.Numerics;
using System.Runtime.CompilerServices;

namespace Converter.Trellis.Codebooks;

/// <summary>Turns a 16-bit trellis state into its fp16 codebook value, bit-exact with exllamav3's <c>decode</c> (docs/exl3-format.md §1).</summary>
public interface ITrellisCodebook
{
    Half Decode(ushort state);
}

/// <summary>The shared "two halves" step of 3INST and MCG (§1.1).</summary>
public static class TwoHalvesStep
{
    // (x & 0x8FFF8FFF) ^ 0x3B603B60 pins each half to ±[0.125, 2): the lop3 LUT 0x6a in codebook.cuh.
    private const uint Mask = 0x8FFF8FFF;
    private const uint Xor = 0x3B603B60;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Half Apply(uint x)
    {
        x = (x & Mask) ^ Xor;
        var h0 = BitConverter.UInt16BitsToHalf((ushort)x);
        var h1 = BitConverter.UInt16BitsToHalf((ushort)(x >> 16));
        // The sum of two fp16 values with exponents in [-3, 0] is exact in float32, so one float→fp16 rounding
        // reproduces __hadd's round-to-nearest-even.
        return (Half)((float)h0 + (float)h1);
    }
}

/// <summary>3INST: <c>x = s·89226354 + 64248484</c> then the two-halves step (§1.2).</summary>
public readonly struct ThreeInstCodebook : ITrellisCodebook
{
    public Half Decode(ushort state) =>
        TwoHalvesStep.Apply(state * CodebookRegistry.ThreeInstMultiplier + CodebookRegistry.ThreeInstIncrement);
}

/// <summary>MCG: <c>x = s·multiplier</c> then the two-halves step (§1.3).</summary>
public readonly struct McgCodebook(uint multiplier) : ITrellisCodebook
{
    public Half Decode(ushort state) => TwoHalvesStep.Apply(state * multiplier);
}

/// <summary>MUL1: <c>x = s·multiplier</c>, sum of the four bytes b, value = fp16(fma(1024 + b, k_inv, k_bias)) (§1.4).</summary>
public readonly struct Mul1Codebook(uint multiplier) : ITrellisCodebook
{
    // fp16 bit patterns from codebook.cuh: k_inv 0x1EEE ≈ 1/147.77, k_bias 0xC931 = -10.3828125.
    private static readonly double KInv = (double)BitConverter.UInt16BitsToHalf(0x1EEE);
    private static readonly double KBias = (double)BitConverter.UInt16BitsToHalf(0xC931);

    public Half Decode(ushort state)
    {
        uint x = state * multiplier;
        uint b = (x & 0xFF) + ((x >> 8) & 0xFF) + ((x >> 16) & 0xFF) + (x >> 24);
        // fp16 0x6400 + b is exactly 1024 + b. The product (11 × 11 significant bits) and the sum are exact in
        // double, so a single double→fp16 rounding equals the fused fp16 FMA's single rounding.
        double h = 1024 + b;
        return (Half)(h * KInv + KBias);
    }
}

/// <summary>Creates the decode struct for a spec; used once per table build, never in a hot loop.</summary>
public static class CodebookDecoder
{
    public static Half Decode(CodebookSpec spec, ushort state) => spec.Kind switch
    {
        CodebookKind.ThreeInst => new ThreeInstCodebook().Decode(state),
        CodebookKind.Mcg => new McgCodebook(spec.Multiplier).Decode(state),
        CodebookKind.Mul1 => new Mul1Codebook(spec.Multiplier).Decode(state),
        _ => throw new ArgumentOutOfRangeException(nameof(spec)),
    };

    internal static float[] BuildValues<T>(T codebook) where T : struct, ITrellisCodebook
    {
        var values = new float[CodebookTable.Size];
        for (int s = 0; s < values.Length; s++)
            values[s] = (float)codebook.Decode((ushort)s);
        return values;
    }
}
