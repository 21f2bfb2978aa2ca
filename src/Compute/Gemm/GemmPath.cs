using Converter.Compute;

namespace Converter.Compute.Gemm;

/// <summary>Which <see cref="IGemmKernel"/> <see cref="MatMul"/> runs.</summary>
internal enum GemmPath
{
    Vector512,
    Vector256,
    Portable,
}
