namespace Converter.Compute;

/// <summary>
/// A linear's weight (out, in) row-major, made in the memory of the device that quantized it (the reconstruction from
/// LDLQ's Q where Q stayed on the GPU): the host gets its copy once, and the device's weight cache may keep the
/// device copy as that array's, so the forward after it uploads nothing.
/// </summary>
public interface IResidentWeight : IDisposable
{
    /// <summary>Output features: the weight's rows.</summary>
    int Rows { get; }

    /// <summary>Input features: the weight's columns.</summary>
    int Columns { get; }

    /// <summary>The values, row-major, into <paramref name="host"/> (Rows·Columns values).</summary>
    void CopyTo(float[] host);

    /// <summary>
    /// Hands the device copy to its device's weight cache as the copy of <paramref name="host"/> (the array
    /// <see cref="CopyTo"/> filled, holding the same values); the cache owns it from now and this object holds nothing.
    /// </summary>
    void KeepAsCopyOf(float[] host);
}
