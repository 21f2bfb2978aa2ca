using System.Runtime.InteropServices;

namespace Converter.Cuda.Native;

/// <summary>The CUDA driver API calls we use (cuda.h), by P/Invoke. Every call returns a CUresult; 0 is success.</summary>
internal static unsafe partial class CudaDriver
{
    internal const int AttributeMultiprocessorCount = 16;
    internal const int AttributeClockRate = 13;
    internal const int AttributeComputeCapabilityMajor = 75;
    internal const int AttributeComputeCapabilityMinor = 76;
    internal const int AttributeMaxSharedMemoryPerBlockOptin = 97;
    internal const int FunctionAttributeMaxDynamicSharedSizeBytes = 8;
    internal const int FunctionAttributeNumRegs = 4;
    internal const int FunctionAttributeLocalSizeBytes = 3;

    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuInit(uint flags);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDriverGetVersion(out int version);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceGetCount(out int count);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuDeviceTotalMem_v2")] internal static partial int cuDeviceTotalMem(out nuint bytes, int device);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDevicePrimaryCtxRetain(out IntPtr context, int device);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] internal static partial int cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuCtxSetCurrent(IntPtr context);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuCtxSynchronize();
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemGetInfo_v2")] internal static partial int cuMemGetInfo(out nuint free, out nuint total);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemAlloc_v2")] internal static partial int cuMemAlloc(out ulong pointer, nuint bytes);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemFree_v2")] internal static partial int cuMemFree(ulong pointer);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemAllocHost_v2")] internal static partial int cuMemAllocHost(out IntPtr pointer, nuint bytes);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemFreeHost(IntPtr pointer);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyHtoD_v2")] internal static partial int cuMemcpyHtoD(ulong destination, void* source, nuint bytes);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyDtoH_v2")] internal static partial int cuMemcpyDtoH(void* destination, ulong source, nuint bytes);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyDtoD_v2")] internal static partial int cuMemcpyDtoD(ulong destination, ulong source, nuint bytes);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpy2D_v2")] internal static partial int cuMemcpy2D(Memcpy2D* copy);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemsetD8_v2")] internal static partial int cuMemsetD8(ulong destination, byte value, nuint count);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuModuleLoadData(out IntPtr module, void* image);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuModuleUnload(IntPtr module);
    [LibraryImport(CudaLibraries.Driver, StringMarshalling = StringMarshalling.Utf8)] internal static partial int cuModuleGetFunction(out IntPtr function, IntPtr module, string name);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuFuncSetAttribute(IntPtr function, int attribute, int value);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuFuncGetAttribute(out int value, int attribute, IntPtr function);
    [LibraryImport(CudaLibraries.Driver)]
    internal static partial int cuLaunchKernel(IntPtr function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, IntPtr stream, void** parameters, void** extra);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuStreamCreate(out IntPtr stream, uint flags);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuStreamDestroy_v2")] internal static partial int cuStreamDestroy(IntPtr stream);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuStreamSynchronize(IntPtr stream);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyHtoDAsync_v2")] internal static partial int cuMemcpyHtoDAsync(ulong destination, void* source, nuint bytes, IntPtr stream);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyDtoHAsync_v2")] internal static partial int cuMemcpyDtoHAsync(void* destination, ulong source, nuint bytes, IntPtr stream);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuEventCreate(out IntPtr e, uint flags);
    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuEventDestroy_v2")] internal static partial int cuEventDestroy(IntPtr e);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuEventRecord(IntPtr e, IntPtr stream);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuEventSynchronize(IntPtr e);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuEventElapsedTime(out float milliseconds, IntPtr start, IntPtr end);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuGetErrorName(int error, out IntPtr name);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuGetErrorString(int error, out IntPtr text);
}

/// <summary>
/// CUDA_MEMCPY2D (cuda.h). The memory types are 4-byte enums followed by 8-byte-aligned pointers, so each is declared
/// with its padding as one 8-byte field (little-endian: the enum's value in the low half).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Memcpy2D
{
    internal const ulong Host = 1;
    internal const ulong Device = 2;

    public nuint SrcXInBytes;
    public nuint SrcY;
    public ulong SrcMemoryType;
    public nint SrcHost;
    public ulong SrcDevice;
    public nint SrcArray;
    public nuint SrcPitch;
    public nuint DstXInBytes;
    public nuint DstY;
    public ulong DstMemoryType;
    public nint DstHost;
    public ulong DstDevice;
    public nint DstArray;
    public nuint DstPitch;
    public nuint WidthInBytes;
    public nuint Height;
}
