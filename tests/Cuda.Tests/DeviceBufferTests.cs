using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>The context's count of the device memory its buffers hold, and its peak (the module line's "GPU allocated peak").</summary>
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
}
