using System.Reflection;
using System.Runtime.InteropServices;

namespace Converter.Cuda.Native;

/// <summary>
/// Finds the CUDA shared libraries at run time. The driver (libcuda.so.1) comes with the GPU driver; NVRTC, cuBLAS and
/// cuSOLVER (and CUPTI, for `convert --timeline-gpu`) come with a CUDA toolkit or its pip wheels, whose sonames carry the toolkit's major version, so several
/// names and the usual install folders are tried. TRELLIS_CUDA_LIB_DIR, when set, is searched first.
/// </summary>
internal static class CudaLibraries
{
    internal const string Driver = "trellis-cuda";
    internal const string Nvrtc = "trellis-nvrtc";
    internal const string Cublas = "trellis-cublas";
    internal const string Cusolver = "trellis-cusolver";
    internal const string Cupti = "trellis-cupti";

    private static readonly Dictionary<string, string[]> Candidates = new()
    {
        [Driver] = ["libcuda.so.1", "libcuda.so"],
        [Nvrtc] = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"],
        [Cublas] = ["libcublas.so.13", "libcublas.so.12", "libcublas.so"],
        [Cusolver] = ["libcusolver.so.12", "libcusolver.so.11", "libcusolver.so"],
        [Cupti] = ["libcupti.so.13", "libcupti.so.12", "libcupti.so"],
    };

    private static readonly string[] Folders =
    [
        "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu",
        "/usr/local/cuda/extras/CUPTI/lib64",
    ];

    // A DllImport resolver can be registered only once per assembly; the type initializer runs it exactly once.
    private static readonly bool Registered = Register();

    /// <summary>Called before the first native call (device discovery) so the names above resolve.</summary>
    internal static bool EnsureRegistered() => Registered;

    private static bool Register()
    {
        NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
        return true;
    }

    /// <summary>The first of NVRTC, cuBLAS and cuSOLVER that cannot be loaded, as a sentence; null when all load.</summary>
    internal static string? MissingToolkitLibrary()
    {
        EnsureRegistered();
        foreach (var (name, what) in new[] { (Nvrtc, "NVRTC (libnvrtc.so)"), (Cublas, "cuBLAS (libcublas.so)"), (Cusolver, "cuSOLVER (libcusolver.so)") })
        {
            if (Resolve(name, typeof(CudaLibraries).Assembly, null) == IntPtr.Zero)
                return $"{what} was not found; install the CUDA toolkit or its pip wheels, or set TRELLIS_CUDA_LIB_DIR";
        }
        return null;
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (!Candidates.TryGetValue(name, out var names))
            return IntPtr.Zero;
        foreach (var folder in SearchFolders())
        {
            foreach (var file in names)
            {
                string full = folder.Length == 0 ? file : Path.Combine(folder, file);
                if ((folder.Length == 0 || File.Exists(full)) && NativeLibrary.TryLoad(full, out var handle))
                    return handle;
            }
        }
        return IntPtr.Zero;
    }

    private static IEnumerable<string> SearchFolders()
    {
        if (Environment.GetEnvironmentVariable("TRELLIS_CUDA_LIB_DIR") is { Length: > 0 } dir)
            yield return dir;
        yield return ""; // the loader's own search (LD_LIBRARY_PATH, ldconfig cache)
        foreach (var f in Folders)
            yield return f;
        // pip wheels (nvidia-*-cu13 and friends) install next to PyTorch on many GPU machines.
        foreach (var site in new[] { "/opt/torch/.venv/lib/python3.12/site-packages", "/usr/local/lib/python3.12/dist-packages", "/usr/lib/python3/dist-packages" })
        {
            foreach (var sub in new[] { "nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib", "nvidia/cublas/lib", "nvidia/cusolver/lib" })
                yield return Path.Combine(site, sub);
        }
    }
}
