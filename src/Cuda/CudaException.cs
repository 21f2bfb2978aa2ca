using System.Runtime.InteropServices;
using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>A CUDA driver, NVRTC, cuBLAS or cuSOLVER call that did not succeed, with the call and the status's name.</summary>
public sealed class CudaException(string message) : Exception(message)
{
    /// <summary>Throws unless <paramref name="status"/> is CUDA_SUCCESS.</summary>
    internal static void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException($"{call} failed: {DriverErrorName(status)}");
    }

    internal static string DriverErrorName(int status)
    {
        try
        {
            if (CudaDriver.cuGetErrorName(status, out var name) == 0 && name != IntPtr.Zero)
            {
                string text = CudaDriver.cuGetErrorString(status, out var s) == 0 && s != IntPtr.Zero ? $" ({Marshal.PtrToStringUTF8(s)})" : "";
                return Marshal.PtrToStringUTF8(name) + text;
            }
        }
        catch (DllNotFoundException)
        {
        }
        return $"CUresult {status}";
    }
}
