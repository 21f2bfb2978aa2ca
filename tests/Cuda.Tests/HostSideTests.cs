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
    public void KernelSourcesAreEmbedded(string file, string kernel) =>
        Assert.That(KernelCompiler.Source(file), Does.Contain($"__global__ void").And.Contain(kernel));

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
