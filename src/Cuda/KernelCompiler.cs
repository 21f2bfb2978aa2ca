using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>
/// Compiles the embedded CUDA C kernels with NVRTC for the device's own architecture and keeps the cubins on disk,
/// keyed by a hash of source, defines, architecture and NVRTC version, so a second run loads them without compiling.
/// Cache files are written atomically (temp name, then rename); a damaged or foreign file just misses the cache.
/// </summary>
internal sealed unsafe class KernelCompiler(CudaDeviceInfo device, string cacheDirectory)
{
    internal static string DefaultCacheDirectory()
    {
        string? root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(root))
            root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "trellis", "cuda");
    }

    /// <summary>The text of an embedded kernel file (src/Cuda/Kernels).</summary>
    internal static string Source(string fileName)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Converter.Cuda.Kernels." + fileName)
            ?? throw new InvalidOperationException($"kernel source {fileName} is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public byte[] Compile(string fileName, IReadOnlyDictionary<string, string> defines)
    {
        string source = Source(fileName);
        string version = NvrtcVersion();
        var options = new List<string> { $"--gpu-architecture={device.Architecture}", "--std=c++17", "-default-device" };
        options.AddRange(defines.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"-D{d.Key}={d.Value}"));
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", [source, version, .. options]))))[..24];
        string path = Path.Combine(cacheDirectory, $"{Path.GetFileNameWithoutExtension(fileName)}-{device.Architecture}-{key}.cubin");
        if (File.Exists(path))
        {
            try
            {
                return File.ReadAllBytes(path);
            }
            catch (IOException)
            {
            }
        }
        var cubin = CompileNow(source, fileName, options);
        TryStore(path, cubin);
        return cubin;
    }

    private static string NvrtcVersion()
    {
        try
        {
            Check(Nvrtc.nvrtcVersion(out int major, out int minor), "nvrtcVersion");
            return $"nvrtc {major}.{minor}";
        }
        catch (DllNotFoundException)
        {
            throw new CudaException("NVRTC (libnvrtc.so) was not found: install the CUDA toolkit or its nvidia-cuda-nvrtc wheel, or set TRELLIS_CUDA_LIB_DIR");
        }
    }

    private static byte[] CompileNow(string source, string name, List<string> options)
    {
        Check(Nvrtc.nvrtcCreateProgram(out var program, source, name, 0, IntPtr.Zero, IntPtr.Zero), "nvrtcCreateProgram");
        try
        {
            var handles = options.Select(o => Marshal.StringToCoTaskMemUTF8(o)).ToArray();
            int status;
            try
            {
                fixed (IntPtr* p = handles)
                    status = Nvrtc.nvrtcCompileProgram(program, handles.Length, (byte**)p);
            }
            finally
            {
                foreach (var h in handles)
                    Marshal.FreeCoTaskMem(h);
            }
            if (status != 0)
                throw new CudaException($"NVRTC could not compile {name} ({string.Join(' ', options)}): {ErrorString(status)}\n{Log(program)}");
            Check(Nvrtc.nvrtcGetCUBINSize(program, out var size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            fixed (byte* p = cubin)
                Check(Nvrtc.nvrtcGetCUBIN(program, p), "nvrtcGetCUBIN");
            return cubin;
        }
        finally
        {
            Nvrtc.nvrtcDestroyProgram(ref program);
        }
    }

    private static string Log(IntPtr program)
    {
        if (Nvrtc.nvrtcGetProgramLogSize(program, out var size) != 0 || size <= 1)
            return "";
        var log = new byte[(int)size];
        fixed (byte* p = log)
            Nvrtc.nvrtcGetProgramLog(program, p);
        return Encoding.UTF8.GetString(log).TrimEnd('\0');
    }

    private static void TryStore(string path, byte[] cubin)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            string temp = path + $".{Environment.ProcessId}.tmp";
            File.WriteAllBytes(temp, cubin);
            File.Move(temp, path, overwrite: true);
        }
        catch (IOException)
        {
            // A read-only or full cache only costs a recompile next time.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static string ErrorString(int status) => Marshal.PtrToStringUTF8(Nvrtc.nvrtcGetErrorString(status)) ?? $"nvrtcResult {status}";

    private static void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException($"{call} failed: {ErrorString(status)}");
    }
}
