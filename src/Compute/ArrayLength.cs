namespace Converter.Compute;

/// <summary>
/// The length of one array of <c>rows × cols</c> values, computed in 64 bits: an int product of two dimensions wraps
/// silently (or throws a bare OverflowException from <c>new T[…]</c>) once it passes 2^31, e.g. a head of 16384 ×
/// 152064; this says which array and why instead.
/// </summary>
public static class ArrayLength
{
    /// <summary>rows·cols as an array length; throws naming <paramref name="what"/> when one array cannot hold it.</summary>
    public static int Of(long rows, long cols, string what)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (!Fits(rows, cols))
            throw new ArgumentException($"a ({rows}, {cols}) {what} has {(double)rows * cols:G4} values, more than one array holds ({Array.MaxLength})");
        return (int)(rows * cols);
    }

    /// <summary>True when one array holds rows·cols values.</summary>
    public static bool Fits(long rows, long cols) => rows >= 0 && cols >= 0 && (cols == 0 || rows <= Array.MaxLength / cols);
}
