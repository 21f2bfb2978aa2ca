namespace Converter.Formats.Numerics;

/// <summary>Span conversions between IEEE fp16 (<see cref="Half"/>) and float32; both directions are exact/RNE casts.</summary>
public static class Float16
{
    /// <summary>Widens fp16 to float32 (exact).</summary>
    public static void ToSingle(ReadOnlySpan<Half> source, Span<float> dest)
    {
        if (dest.Length < source.Length)
            throw new ArgumentException($"destination holds {dest.Length} values, source {source.Length}", nameof(dest));
        for (var i = 0; i < source.Length; i++)
            dest[i] = (float)source[i];
    }

    /// <summary>Narrows float32 to fp16 with round-to-nearest-even (the cast's IEEE semantics, as in PyTorch).</summary>
    public static void FromSingle(ReadOnlySpan<float> source, Span<Half> dest)
    {
        if (dest.Length < source.Length)
            throw new ArgumentException($"destination holds {dest.Length} values, source {source.Length}", nameof(dest));
        for (var i = 0; i < source.Length; i++)
            dest[i] = (Half)source[i];
    }
}
