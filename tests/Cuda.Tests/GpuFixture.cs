using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// Opens cuda:0 once for the GPU tests, or ignores them with the driver's reason on a machine without a usable GPU
/// (CI); TRELLIS_REQUIRE_GPU=1 turns that into a failure, so a run on the GPU machine cannot pass by skipping.
/// </summary>
public abstract class GpuFixture
{
    protected CudaContext Cuda { get; private set; } = null!;

    [OneTimeSetUp]
    public void OpenDevice()
    {
        var devices = CudaDevice.Discover(out var whyNone);
        string? why = devices.Count == 0 ? whyNone : devices[0].Major < 8 ? $"{devices[0]} is older than sm_80" : null;
        if (why is not null)
        {
            if (Environment.GetEnvironmentVariable("TRELLIS_REQUIRE_GPU") == "1")
                Assert.Fail($"TRELLIS_REQUIRE_GPU=1 but {why}");
            Assert.Ignore($"no usable GPU: {why}");
        }
        Cuda = CudaContext.Open(0, Path.Combine(Path.GetTempPath(), "trellis-test-kernels"));
    }

    [OneTimeTearDown]
    public void CloseDevice() => Cuda?.Dispose();
}
