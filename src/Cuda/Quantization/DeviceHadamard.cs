using Converter.Regularize.Hadamard;

namespace Converter.Cuda.Quantization;

/// <summary>
/// <see cref="HadamardTransform"/>'s rotations of a row-major matrix in device memory (Kernels/hadamard.cu): the same
/// butterflies in the same order and the same final multiply, so the result is the host's to the bit
/// (<c>DeviceHadamardTests</c>).
/// </summary>
internal static class DeviceHadamard
{
    // A thread block takes 32 lines of one 128-block (the kernels' LINES).
    private const int Lines = 32;
    private const int Threads = 256;

    /// <summary>
    /// m ← Had·m (<see cref="HadamardTransform.LeftMultiply"/>). With <paramref name="scales"/> (a device vector of
    /// max(rows, cols) floats, else 0) every value is first scaled to (m[i, j]·s[j])·s[i], as
    /// <c>GroupHessian.InQuantizedBasis</c> scales before it rotates.
    /// </summary>
    public static void LeftMultiply(CudaModule kernels, ulong m, int rows, int cols, ulong scales = 0)
    {
        Check(rows, "rows");
        long blocks = rows / HadamardTransform.BlockSize * (long)((cols + Lines - 1) / Lines);
        CudaKernels.HadamardColumns.Launch(kernels, checked((uint)blocks), Threads, 0, (m, rows, cols, scales, HadamardTransform.Scale));
    }

    /// <summary>m ← m·Had (<see cref="HadamardTransform.RightMultiply"/>).</summary>
    public static void RightMultiply(CudaModule kernels, ulong m, int rows, int cols)
    {
        Check(cols, "columns");
        long blocks = cols / HadamardTransform.BlockSize * (long)((rows + Lines - 1) / Lines);
        CudaKernels.HadamardRows.Launch(kernels, checked((uint)blocks), Threads, 0, (m, rows, cols, HadamardTransform.Scale));
    }

    private static void Check(int rotated, string what)
    {
        if (rotated <= 0 || rotated % HadamardTransform.BlockSize != 0)
            throw new ArgumentException($"{what} ({rotated}) must be a positive multiple of {HadamardTransform.BlockSize} for the Hadamard rotation (docs/exl3-format.md §3.1)");
    }
}
