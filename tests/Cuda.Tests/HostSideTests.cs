using Converter.Cuda.Trellis;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>What the CUDA layer guarantees without a GPU: it finds its kernels, sizes them to fit, and explains a missing driver.</summary>
[TestFixture]
public sealed class HostSideTests
{
    [TestCase("viterbi.cu", "viterbi_tiles")]
    [TestCase("viterbi.cu", "decode_tiles")]
    [TestCase("dense.cu", "add_float_to_double")]
    [TestCase("ldlq.cu", "ldlq_block_target")]
    [TestCase("ldlq.cu", "ldlq_gather_tiles")]
    [TestCase("ldlq.cu", "ldlq_error_rows")]
    [TestCase("ldlq.cu", "ldlq_decode")]
    [TestCase("forward.cu", "norm_rows")]
    [TestCase("forward.cu", "gelu_tanh_gate")]
    [TestCase("forward.cu", "clamped_swiglu")]
    [TestCase("moe.cu", "route_topk")]
    [TestCase("moe.cu", "scatter_add_rows")]
    public void KernelSourcesAreEmbedded(string file, string kernel) =>
        Assert.That(KernelCompiler.Source(file), Does.Contain($"__global__ void").And.Contain(kernel));

    /// <summary>
    /// NVRTC refuses an extern "C" kernel named like a CUDA math function ("more than one instance of overloaded
    /// function 'norm' has C linkage"): a kernel once called norm broke every GPU forward, and only a GPU showed it.
    /// </summary>
    [TestCase("forward.cu")]
    [TestCase("moe.cu")]
    [TestCase("dense.cu")]
    [TestCase("ldlq.cu")]
    [TestCase("viterbi.cu")]
    public void KernelNamesDoNotShadowTheCudaMathLibrary(string file)
    {
        string[] math = ["norm", "norm3d", "norm4d", "normf", "rnorm", "rnormf", "exp", "expf", "log", "logf", "pow", "powf", "sqrt",
            "sqrtf", "rsqrt", "tanh", "tanhf", "erf", "sin", "cos", "fma", "fmaf", "abs", "fabs", "max", "min", "round", "trunc", "floor", "ceil"];
        var names = System.Text.RegularExpressions.Regex.Matches(KernelCompiler.Source(file), @"__global__\s+void\s+(\w+)\s*\(")
            .Select(m => m.Groups[1].Value).ToList();
        Assert.That(names, Is.Not.Empty);
        Assert.That(names.Intersect(math), Is.Empty);
    }

    [Test]
    public void SearchSharedMemoryFitsEveryK([Range(1, 8)] int bits)
    {
        // sm_80 allows 163 KiB of dynamic shared memory per block, sm_90 227 KiB; the kernel must fit the smaller.
        Assert.That(CudaTileEncoder.SharedBytes(bits, CudaTileEncoder.TilesPerBlockAt(bits)), Is.LessThanOrEqualTo(163 * 1024));
    }

    [Test]
    public void DiscoveryExplainsAMissingGpu()
    {
        var devices = CudaDevice.Discover(out var whyNone);
        if (devices.Count > 0)
            Assert.Ignore($"a GPU is present: {devices[0]}");
        Assert.That(whyNone, Is.Not.Null.And.Not.Empty);
    }
}
