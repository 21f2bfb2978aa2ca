namespace Converter.Cuda.Models;

/// <summary>How the GPU forward computes causal attention.</summary>
public enum GpuAttention
{
    /// <summary><see cref="Fused"/> for rows of at least <see cref="CudaForwardBackend.FusedAttentionTokens"/> tokens, <see cref="Products"/> below.</summary>
    Auto,

    /// <summary>Two batched GEMMs around a causal softmax, with a tokens × tokens score matrix per row and head.</summary>
    Products,

    /// <summary>One flash-attention style kernel (Kernels/attention.cu) that never materializes the scores.</summary>
    Fused,
}
