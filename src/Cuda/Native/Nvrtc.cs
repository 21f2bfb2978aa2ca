using System.Runtime.InteropServices;

namespace Converter.Cuda.Native;

/// <summary>The NVRTC run-time compiler (nvrtc.h), by P/Invoke. Every call returns an nvrtcResult; 0 is success.</summary>
internal static unsafe partial class Nvrtc
{
    [LibraryImport(CudaLibraries.Nvrtc)] internal static partial int nvrtcVersion(out int major, out int minor);
    [LibraryImport(CudaLibraries.Nvrtc, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int nvrtcCreateProgram(out IntPtr program, string source, string name, int headers, IntPtr headerSources, IntPtr includeNames);
    [LibraryImport(CudaLibraries.Nvrtc)] internal static partial int nvrtcCompileProgram(IntPtr program, int optionCount, byte** options);
    [LibraryImport(CudaLibraries.Nvrtc)] internal static partial int nvrtcGetProgramLogSize(IntPtr program, out nuint size);
    [LibraryImport(CudaLibraries.Nvrtc)] internal static partial int nvrtcGetProgramLog(IntPtr program, byte* log);
    [LibraryImport(CudaLibraries.Nvrtc)] internal static partial int nvrtcGetCUBINSize(IntPtr program, out nuint size);
    [LibraryImport(CudaLibraries.Nvrtc)] internal static partial int nvrtcGetCUBIN(IntPtr program, byte* cubin);
    [LibraryImport(CudaLibraries.Nvrtc)] internal static partial int nvrtcDestroyProgram(ref IntPtr program);
    [LibraryImport(CudaLibraries.Nvrtc)] internal static partial IntPtr nvrtcGetErrorString(int result);
}
