using System.Diagnostics;
using Converter.Cuda.Blas;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// CUPTI's records of what the GPU ran (`convert --timeline-gpu`): the record layouts read at fixed offsets
/// (Native/Cupti.cs) must give each kernel, copy and fill its kind, size, times on the caller's clock and the driver
/// call that queued it. A wrong offset gives nonsense times, sizes or correlations, which these checks catch.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class ActivityRecorderTests : GpuFixture
{
    [Test]
    public void KernelsCopiesAndFillsComeWithTheCallsThatQueuedThemOnTheCallersClock()
    {
        var clock = Stopwatch.StartNew();
        using var algebra = new CudaDenseAlgebra(Cuda);
        var x = new float[64 * 256];
        var w = new float[128 * 256];
        var y = new float[64 * 128];
        algebra.MultiplyTransposed(x, w, y, 64, 128, 256); // compiles and warms cuBLAS before recording
        const int values = 3 << 20;
        using var buffer = Cuda.Allocate<float>(values);

        double started = clock.Elapsed.TotalSeconds;
        using var recorder = CudaActivityRecorder.Start(clock.Elapsed.TotalSeconds);
        buffer.Fill(0);
        buffer.CopyFrom(new float[values]);
        algebra.MultiplyTransposed(x, w, y, 64, 128, 256);
        var records = recorder.Drain();
        double ended = clock.Elapsed.TotalSeconds;

        var work = records.Where(r => r.Kind != DeviceActivityKind.ApiCall).ToList();
        var calls = records.Where(r => r.Kind == DeviceActivityKind.ApiCall).ToList();
        Assert.That(work.Any(r => r.Kind == DeviceActivityKind.Fill && r.Bytes == values * 4L), Is.True, "the fill and its size");
        Assert.That(work.Count(r => r.Kind == DeviceActivityKind.Copy && r.Name == "memcpy HtoD"), Is.GreaterThanOrEqualTo(1), "the upload");
        Assert.That(work.Where(r => r.Kind == DeviceActivityKind.Copy && r.Name == "memcpy HtoD").Sum(r => r.Bytes), Is.GreaterThanOrEqualTo(values * 4L), "all of the upload's bytes");
        Assert.That(work.Any(r => r.Kind == DeviceActivityKind.Kernel && r.Name.Length > 3), Is.True, "cuBLAS's kernel, named");
        Assert.That(recorder.Dropped, Is.Zero);
        foreach (var r in records)
        {
            Assert.That(r.Start, Is.InRange(started - 0.001, ended + 0.001), $"{r.Name} on the caller's clock");
            Assert.That(r.End, Is.GreaterThanOrEqualTo(r.Start), r.Name);
        }
        foreach (var r in work)
        {
            // A runtime call (cuBLAS launches through the runtime) and the driver call inside it may share the correlation.
            var call = calls.Where(c => c.Correlation == r.Correlation).ToList();
            Assert.That(call, Is.Not.Empty, $"{r.Name}: the driver or runtime call that queued it");
            Assert.That(call.Any(c => Queues(c.Name)), Is.True, $"{r.Name}: queued by {string.Join(", ", call.Select(c => c.Name))}");
            Assert.That(r.Start, Is.GreaterThanOrEqualTo(call.Min(c => c.Start) - 1e-6), $"{r.Name} runs after its call began");
            Assert.That(call.All(c => c.Thread != 0), Is.True, "the calling thread");
        }
        Assert.That(recorder.Drain(), Is.Empty, "a drain takes what was recorded; nothing ran since");
    }

    private static bool Queues(string call) => new[] { "cuLaunch", "cuMemcpy", "cuMemset", "cudaLaunch", "cudaMemcpy", "cudaMemset" }.Any(call.StartsWith);
}
