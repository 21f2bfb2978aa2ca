namespace Converter.Cuda.Blas;

/// <summary>
/// The arithmetic of the GPU forward's activation products (linears and attention's two products). The Hessian sums,
/// proxy errors and LDLQ never use it: their precision is what the quantizer's quality rests on.
/// </summary>
public enum GpuMath
{
    /// <summary>Plain FP32 SGEMM: the GPU forward tracks the host's to float rounding.</summary>
    Fp32,

    /// <summary>
    /// TF32 tensor cores (cuBLAS's CUBLAS_COMPUTE_32F_FAST_TF32): operands rounded to a 10-bit mantissa, FP32
    /// accumulation; several times FP32's rate on Ampere and later, relative error ~1e-3 per product.
    /// </summary>
    Tf32,
}
