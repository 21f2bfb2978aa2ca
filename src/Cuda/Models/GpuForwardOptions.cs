using Converter.Cuda.Blas;

namespace Converter.Cuda.Models;

/// <summary>The GPU forward's speed/precision choices; the defaults are the reference behaviour.</summary>
/// <param name="Math">The activation products' arithmetic (<c>--gpu-math</c>).</param>
/// <param name="HessianMath">The arithmetic of the products the capture's Gram sums add up (<c>--hessian-math</c>; the sums stay float64).</param>
public sealed record GpuForwardOptions(GpuMath Math = GpuMath.Fp32, GpuAttention Attention = GpuAttention.Auto, GpuMath HessianMath = GpuMath.Fp32)
{
    public static GpuForwardOptions Default { get; } = new();

    /// <summary>The option's spelling on the command line and in reports: fp32 or tf32.</summary>
    public static string Name(GpuMath math) => math switch
    {
        GpuMath.Fp32 => "fp32",
        GpuMath.Tf32 => "tf32",
        _ => throw new ArgumentOutOfRangeException(nameof(math), math, null),
    };

    /// <summary>Parses fp32 or tf32 (case-insensitive); null for anything else.</summary>
    public static GpuMath? ParseMath(string text) => text.ToLowerInvariant() switch
    {
        "fp32" => GpuMath.Fp32,
        "tf32" => GpuMath.Tf32,
        _ => null,
    };

    /// <summary>The option's spelling: auto, products or fused.</summary>
    public static string Name(GpuAttention attention) => attention switch
    {
        GpuAttention.Auto => "auto",
        GpuAttention.Products => "products",
        GpuAttention.Fused => "fused",
        _ => throw new ArgumentOutOfRangeException(nameof(attention), attention, null),
    };

    /// <summary>Parses auto, products or fused (case-insensitive); null for anything else.</summary>
    public static GpuAttention? ParseAttention(string text) => text.ToLowerInvariant() switch
    {
        "auto" => GpuAttention.Auto,
        "products" => GpuAttention.Products,
        "fused" => GpuAttention.Fused,
        _ => null,
    };
}
