namespace Converter.Formats.Safetensors;

/// <summary>Element types this toolchain reads and writes in safetensors files.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    I8,
    I16,
    I32,
    I64,
    U8,
    BOOL,
    /// <summary>float8_e4m3fn (<see cref="Numerics.Float8E4M3"/>): DeepSeek-V3's and Qwen3-FP8's block-scaled weights.</summary>
    F8_E4M3,
}

/// <summary>
/// The one table of dtype facts: the name safetensors writes in the header and the element size in bytes.
/// Names are the safetensors spelling ("BF16", "I16", ...), which is case-sensitive.
/// </summary>
public static class DTypes
{
    private readonly record struct Spec(DType DType, string Name, int Size);

    private static readonly Spec[] Table =
    [
        new(DType.F32, "F32", 4),
        new(DType.F16, "F16", 2),
        new(DType.BF16, "BF16", 2),
        new(DType.I8, "I8", 1),
        new(DType.I16, "I16", 2),
        new(DType.I32, "I32", 4),
        new(DType.I64, "I64", 8),
        new(DType.U8, "U8", 1),
        new(DType.BOOL, "BOOL", 1),
        new(DType.F8_E4M3, "F8_E4M3", 1),
    ];

    /// <summary>All supported dtypes, in table order.</summary>
    public static IReadOnlyList<DType> All { get; } = Array.ConvertAll(Table, s => s.DType);

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this DType dtype) => Lookup(dtype).Size;

    /// <summary>The header spelling, e.g. "BF16".</summary>
    public static string SafetensorsName(this DType dtype) => Lookup(dtype).Name;

    /// <summary>Parses a header dtype string; false for dtypes safetensors knows but we do not (F64, F8_E5M2, ...).</summary>
    public static bool TryParse(string name, out DType dtype)
    {
        foreach (var spec in Table)
        {
            if (spec.Name == name)
            {
                dtype = spec.DType;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    private static Spec Lookup(DType dtype)
    {
        var i = (int)dtype;
        if ((uint)i >= (uint)Table.Length)
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a DType value");
        return Table[i];
    }

    // The table is indexed by the enum value; keep the two in the same order.
    static DTypes()
    {
        for (var i = 0; i < Table.Length; i++)
        {
            if ((int)Table[i].DType != i)
                throw new InvalidOperationException($"DType table out of order at {Table[i].DType}");
        }
    }
}
