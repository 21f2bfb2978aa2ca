using System.Text;
using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>What the driver reports about one GPU.</summary>
public sealed record CudaDeviceInfo(int Ordinal, string Name, int Major, int Minor, int Multiprocessors, long TotalMemory, int MaxSharedPerBlock, int ClockKHz)
{
    /// <summary>The NVRTC target for this device, e.g. sm_90.</summary>
    public string Architecture => $"sm_{Major}{Minor}";

    public override string ToString() => $"cuda:{Ordinal} {Name} ({Architecture}, {Multiprocessors} SMs, {TotalMemory / (1L << 30)} GiB)";
}

/// <summary>Device discovery through the driver API. Absent driver or GPU is an answer (an empty list and why), not an error.</summary>
public static unsafe class CudaDevice
{
    /// <summary>The GPUs the driver sees, or an empty list with the reason there are none.</summary>
    public static IReadOnlyList<CudaDeviceInfo> Discover(out string? whyNone)
    {
        whyNone = null;
        CudaLibraries.EnsureRegistered();
        int count;
        try
        {
            int status = CudaDriver.cuInit(0);
            if (status != 0)
            {
                whyNone = $"the CUDA driver did not initialize: {CudaException.DriverErrorName(status)}";
                return [];
            }
            CudaException.Check(CudaDriver.cuDeviceGetCount(out count), "cuDeviceGetCount");
        }
        catch (DllNotFoundException)
        {
            whyNone = "no CUDA driver (libcuda.so.1) was found";
            return [];
        }
        if (count == 0)
        {
            whyNone = "the CUDA driver reports no GPU";
            return [];
        }
        var devices = new List<CudaDeviceInfo>(count);
        for (int i = 0; i < count; i++)
            devices.Add(Describe(i));
        return devices;
    }

    /// <summary>Why the GPU code cannot run although a driver is present (a toolkit library missing), or null.</summary>
    public static string? MissingLibrary() => CudaLibraries.MissingToolkitLibrary();

    private static CudaDeviceInfo Describe(int ordinal)
    {
        CudaException.Check(CudaDriver.cuDeviceGet(out int device, ordinal), "cuDeviceGet");
        byte* name = stackalloc byte[256];
        CudaException.Check(CudaDriver.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        int Attribute(int a)
        {
            CudaException.Check(CudaDriver.cuDeviceGetAttribute(out int v, a, device), "cuDeviceGetAttribute");
            return v;
        }
        CudaException.Check(CudaDriver.cuDeviceTotalMem(out nuint total, device), "cuDeviceTotalMem");
        return new CudaDeviceInfo(ordinal, Encoding.UTF8.GetString(new ReadOnlySpan<byte>(name, 256)).TrimEnd('\0'),
            Attribute(CudaDriver.AttributeComputeCapabilityMajor), Attribute(CudaDriver.AttributeComputeCapabilityMinor),
            Attribute(CudaDriver.AttributeMultiprocessorCount), (long)total, Attribute(CudaDriver.AttributeMaxSharedMemoryPerBlockOptin), Attribute(CudaDriver.AttributeClockRate));
    }
}
