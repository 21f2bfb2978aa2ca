using System.Numerics.Tensors;

namespace Converter.Compute.Gemm;

/// <summary>
/// Fallback for hardware without 256-bit vectors (e.g. 128-bit Arm NEON): sixteen <see cref="TensorPrimitives.Dot"/>
/// calls, which are vectorized for whatever the machine has but reload each operand four times.
/// </summary>
internal readonly unsafe struct PortableGemmKernel : IGemmKernel
{
    public static void Tile4x4(float* x, nint ldx, float* w, nint ldw, int kc, float* y, nint ldy)
    {
        for (int i = 0; i < 4; i++)
        {
            var xr = new ReadOnlySpan<float>(x + i * ldx, kc);
            for (int j = 0; j < 4; j++)
                y[i * ldy + j] += TensorPrimitives.Dot(xr, new ReadOnlySpan<float>(w + j * ldw, kc));
        }
    }
}
