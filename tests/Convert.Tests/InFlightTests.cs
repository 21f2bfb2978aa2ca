using Converter.Conversion.Pipeline;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>How many linears a module quantizes at once, and the runner that bounds them.</summary>
public class InFlightTests
{
    [TestCase(0, false, 7, 1)]
    [TestCase(0, false, 385, 1)]
    [TestCase(0, true, 7, 2)]
    [TestCase(0, true, 31, 2)]
    [TestCase(0, true, 32, 16)]
    [TestCase(0, true, 388, 16)]
    [TestCase(3, true, 388, 3)]
    [TestCase(5, false, 7, 5)]
    public void ModulesOfExpertsQuantizeManyAtOnceOnAGpu(int requested, bool gpu, int linears, int expected) =>
        Assert.That(InFlight.Linears(requested, gpu, linears), Is.EqualTo(expected));

    /// <summary>A sequential stage of q/k/v runs whole on a GPU when the count is automatic and no memory plan limits it; an MLP stage keeps the module's count.</summary>
    [TestCase(0, true, true, false, 3, 3)]
    [TestCase(0, true, true, false, 2, 2)]
    [TestCase(0, true, true, false, 1, 2)]
    [TestCase(0, true, true, false, 4, 2)]
    [TestCase(2, true, true, false, 3, 2)]
    [TestCase(0, false, true, false, 3, 1)]
    [TestCase(0, true, false, false, 3, 2)]
    [TestCase(0, true, true, true, 3, 2)]
    public void ASmallSequentialStageQuantizesWholeOnAGpu(int requested, bool gpu, bool sequential, bool oneInFlight, int stageLinears, int expected)
    {
        int module = requested > 0 ? requested : InFlight.Linears(requested, gpu, stageLinears);
        Assert.That(InFlight.InStage(module, stageLinears, InFlight.WholeStages(requested, gpu, sequential, oneInFlight)), Is.EqualTo(expected));
    }

    [Test]
    public void AtMostDegreeRunAtOnceStartedInOrder()
    {
        int running = 0, peak = 0;
        var started = new System.Collections.Concurrent.ConcurrentQueue<int>();
        InFlight.For(64, 4, i =>
        {
            started.Enqueue(i);
            int now = Interlocked.Increment(ref running);
            lock (started)
                peak = Math.Max(peak, now);
            Thread.Sleep(2);
            Interlocked.Decrement(ref running);
        });
        Assert.That(peak, Is.InRange(1, 4));
        Assert.That(started.Order(), Is.EqualTo(Enumerable.Range(0, 64)));
    }

    [Test]
    public void TheFirstFailureIsRethrownUnwrapped()
    {
        var e = Assert.Throws<InvalidDataException>(() => InFlight.For(10, 3, i =>
        {
            if (i == 2)
                throw new InvalidDataException("bad tensor");
        }));
        Assert.That(e!.Message, Is.EqualTo("bad tensor"));
    }
}
