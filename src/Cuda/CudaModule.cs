using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>A loaded cubin and its kernels; kernels are launched through their <see cref="CudaKernel{TArguments}"/> declarations.</summary>
public sealed unsafe class CudaModule : IDisposable
{
    private readonly CudaContext _context;
    private readonly Dictionary<string, IntPtr> _functions = new();
    private readonly Dictionary<IntPtr, int> _sharedLimits = new();
    private IntPtr _module;

    private CudaModule(CudaContext context, IntPtr module, string source)
    {
        _context = context;
        _module = module;
        Source = source;
    }

    /// <summary>The kernel source file (src/Cuda/Kernels) this module was compiled from.</summary>
    public string Source { get; }

    internal static CudaModule Load(CudaContext context, byte[] cubin, string source)
    {
        IntPtr module;
        fixed (byte* p = cubin)
            CudaException.Check(CudaDriver.cuModuleLoadData(out module, p), "cuModuleLoadData");
        return new CudaModule(context, module, source);
    }

    private IntPtr Function(string name)
    {
        lock (_functions)
        {
            if (!_functions.TryGetValue(name, out var f))
            {
                _context.MakeCurrent();
                CudaException.Check(CudaDriver.cuModuleGetFunction(out f, _module, name), $"cuModuleGetFunction({name})");
                _functions[name] = f;
            }
            return f;
        }
    }

    /// <summary>Registers and local (spill) bytes per thread of a kernel, from the compiled code.</summary>
    public (int Registers, int LocalBytes) Resources(CudaKernel kernel)
    {
        if (kernel.Source != Source)
            throw new InvalidOperationException($"kernel {kernel.Name} is in {kernel.Source}, the module was compiled from {Source}");
        var f = Function(kernel.Name);
        CudaException.Check(CudaDriver.cuFuncGetAttribute(out int regs, CudaDriver.FunctionAttributeNumRegs, f), "cuFuncGetAttribute");
        CudaException.Check(CudaDriver.cuFuncGetAttribute(out int local, CudaDriver.FunctionAttributeLocalSizeBytes, f), "cuFuncGetAttribute");
        return (regs, local);
    }

    /// <summary>
    /// Launches <paramref name="name"/> on the default stream with one 8-byte slot per argument; only
    /// <see cref="CudaKernel{TArguments}.Launch"/> calls this, having checked the arguments against the declaration.
    /// </summary>
    internal void Launch(string name, uint grid, uint block, int sharedBytes, ReadOnlySpan<ulong> arguments)
    {
        var f = Function(name);
        _context.MakeCurrent();
        if (sharedBytes > 48 * 1024)
            RaiseSharedLimit(f, sharedBytes);
        var slots = stackalloc ulong[arguments.Length];
        var pointers = stackalloc void*[arguments.Length];
        for (int i = 0; i < arguments.Length; i++)
        {
            slots[i] = arguments[i];
            pointers[i] = &slots[i];
        }
        CudaException.Check(CudaDriver.cuLaunchKernel(f, grid, 1, 1, block, 1, 1, (uint)sharedBytes, IntPtr.Zero, pointers, null), $"cuLaunchKernel({name})");
    }

    /// <summary>Opts a kernel in to more than 48 KiB of dynamic shared memory, once per size (LDLQ launches it per block).</summary>
    private void RaiseSharedLimit(IntPtr function, int sharedBytes)
    {
        lock (_sharedLimits)
        {
            if (_sharedLimits.TryGetValue(function, out int limit) && limit >= sharedBytes)
                return;
            CudaException.Check(CudaDriver.cuFuncSetAttribute(function, CudaDriver.FunctionAttributeMaxDynamicSharedSizeBytes, sharedBytes), "cuFuncSetAttribute");
            _sharedLimits[function] = sharedBytes;
        }
    }

    public void Dispose()
    {
        if (_module == IntPtr.Zero)
            return;
        _context.MakeCurrent();
        CudaDriver.cuModuleUnload(_module);
        _module = IntPtr.Zero;
    }
}
