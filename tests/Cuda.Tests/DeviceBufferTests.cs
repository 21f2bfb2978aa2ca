using Converter.Cuda.Blas;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The context's count of the device memory its buffers hold, and its peak (the module line's "GPU allocated peak"),
/// and what an algebra says it keeps (its weight cache and scratch, the line's "held after").
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class DeviceBufferTests : GpuFixture
{
    [Test]
    public void TheContextCountsWhatItsBuffersHoldAndTheirPeak()
    {
        long before = Cuda.AllocatedBytes;
        Cuda.ResetPeak();
        Assert.That(Cuda.PeakAllocatedBytes, Is.EqualTo(before));
        using (var a = Cuda.Allocate<float>(1000))
        {
            Assert.That(Cuda.AllocatedBytes, Is.EqualTo(before + 4000));
            using var b = Cuda.Allocate<double>(10);
            Assert.That(Cuda.AllocatedBytes, Is.EqualTo(before + 4080));
        }
        Assert.That(Cuda.AllocatedBytes, Is.EqualTo(before), "freed buffers are no longer counted");
        Assert.That(Cuda.PeakAllocatedBytes, Is.EqualTo(before + 4080), "the peak stays until reset");
        var empty = Cuda.Allocate<ushort>(0);
        empty.Dispose();
        empty.Dispose();
        Assert.That(Cuda.AllocatedBytes, Is.EqualTo(before), "an empty buffer takes a byte and gives it back once");
        Cuda.ResetPeak();
        Assert.That(Cuda.PeakAllocatedBytes, Is.EqualTo(before));
    }

    [Test]
    public void AnAlgebraSaysWhatItKeeps()
    {
        using var algebra = new CudaDenseAlgebra(Cuda);
        Assert.That(algebra.Held().WeightBytes + algebra.Held().ScratchBytes, Is.Zero);
        long before = Cuda.AllocatedBytes;
        algebra.Scratch("small", 100);
        algebra.Scratch("large", 1000);
        algebra.CachedWeight(new float[300]);
        var (weights, weightBytes, scratchBytes, largest) = algebra.Held(roles: 1);
        Assert.That(weights, Is.EqualTo(1));
        Assert.That(weightBytes, Is.EqualTo(1200));
        // Scratch takes 25% headroom.
        Assert.That(scratchBytes, Is.EqualTo(4 * (125 + 1250)));
        Assert.That(largest, Is.EqualTo(new[] { ("large", 5000L) }));
        Assert.That(Cuda.AllocatedBytes - before, Is.EqualTo(weightBytes + scratchBytes), "all of it counted by the context");
    }
}
