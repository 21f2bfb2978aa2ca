using Converter.Compute;
using Converter.Cuda;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Cuda.Quantization;
using Converter.Cuda.Trellis;
using Converter.Models.Forward;
using Converter.Regularize.Quantization;
using Converter.Trellis.Viterbi;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// Where the heavy work of a run goes: the CPU, or one GPU through the CUDA layer (src/Cuda). Chosen once per run
/// from <c>--device auto|cpu|cuda:N</c>; <c>auto</c> takes cuda:0 when a usable GPU is present and says why not
/// otherwise. Owns the GPU context and the encoders made on it.
/// </summary>
public sealed class ComputeBackend : IDisposable
{
    private readonly List<IDisposable> _owned = new();

    private ComputeBackend(CudaContext? cuda, string description, GpuForwardOptions forward)
    {
        Cuda = cuda;
        Description = description;
        if (cuda is not null)
        {
            var algebra = new CudaDenseAlgebra(cuda, forward.HessianMath);
            _owned.Add(algebra);
            Algebra = algebra;
            Ldlq = new CudaLdlqSolver(algebra);
            var blocks = new CudaForwardBackend(algebra, forward);
            ForwardMath = forward.Math;
            HessianMath = forward.HessianMath;
            _owned.Insert(0, blocks);
            Blocks = blocks;
        }
    }

    /// <summary>The GPU in use, or null on the CPU.</summary>
    public CudaContext? Cuda { get; }

    /// <summary>Products, Hessian sums and Cholesky: cuBLAS/cuSOLVER on the GPU, else the CPU.</summary>
    public IDenseAlgebra Algebra { get; } = CpuDenseAlgebra.Instance;

    /// <summary>The LDLQ block loop (§3.7): on the host, or wholly on the GPU with the GPU's encoders.</summary>
    public ILdlqSolver Ldlq { get; } = HostLdlqSolver.Instance;

    /// <summary>Whole decoder blocks with their activations on the GPU, or null on the CPU (op by op through <see cref="Algebra"/>).</summary>
    public IForwardBackend? Blocks { get; }

    /// <summary>One line for logs: which device and, for auto on a machine without a GPU, why.</summary>
    public string Description { get; }

    /// <summary>The arithmetic the forward's activation products run in: FP32 on the CPU, the requested math on a GPU.</summary>
    public GpuMath ForwardMath { get; } = GpuMath.Fp32;

    /// <summary>The arithmetic of the Gram sums' products: FP32 on the CPU, the requested math on a GPU.</summary>
    public GpuMath HessianMath { get; } = GpuMath.Fp32;

    public static ComputeBackend Cpu(string? why = null) => new(null, why is null ? "cpu" : $"cpu ({why})", GpuForwardOptions.Default);

    /// <summary>Validates the option's syntax (usage errors exit 2 before any work).</summary>
    public static void CheckOption(string device)
    {
        if (device is "auto" or "cpu")
            return;
        if (!device.StartsWith("cuda:", StringComparison.Ordinal) || !int.TryParse(device.AsSpan(5), out int n) || n < 0)
            throw new InvalidSettingsException($"--device must be auto, cpu or cuda:N, got '{device}'");
    }

    /// <summary>
    /// Opens the device the option names and logs which it is, as "<paramref name="command"/>: device …" (with the
    /// forward's math when a GPU runs it in anything but FP32).
    /// </summary>
    public static ComputeBackend Open(string device, TextWriter log, string command, GpuForwardOptions? forward = null)
    {
        var backend = Open(device, forward);
        log.WriteLine($"{command}: device {backend.Description}" +
            (backend.ForwardMath != GpuMath.Fp32 ? $", forward products in {GpuForwardOptions.Name(backend.ForwardMath)}" : "") +
            (backend.HessianMath != GpuMath.Fp32 ? $", Hessian products in {GpuForwardOptions.Name(backend.HessianMath)}" : ""));
        return backend;
    }

    /// <summary>
    /// Opens the device the option names; on a GPU the forward runs with <paramref name="forward"/> (default: FP32,
    /// attention path by row length). An explicit cuda:N that cannot be used is an error; auto falls back to the CPU.
    /// A list (convert's <c>--device cuda:0,cuda:1</c>, <see cref="DeviceSet"/>) opens its first device: the commands
    /// that run on one device take that one.
    /// </summary>
    public static ComputeBackend Open(string device, GpuForwardOptions? forward = null)
    {
        device = DeviceSet.Entries(device)[0];
        if (device == "cpu")
            return Cpu();
        bool explicitGpu = device != "auto";
        int ordinal = explicitGpu ? int.Parse(device.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture) : 0;
        var devices = CudaDevice.Discover(out var whyNone);
        if (devices.Count == 0)
        {
            if (explicitGpu)
                throw new CudaException($"--device {device}: {whyNone}");
            return Cpu(whyNone);
        }
        if (ordinal >= devices.Count)
            throw new CudaException($"--device {device}: the driver reports {devices.Count} GPU(s), cuda:0..cuda:{devices.Count - 1}");
        if (devices[ordinal].Major < 8)
        {
            string why = $"{devices[ordinal]} is older than compute capability 8.0, which the GPU kernels need";
            if (explicitGpu)
                throw new CudaException($"--device {device}: {why}");
            return Cpu(why);
        }
        if (CudaDevice.MissingLibrary() is { } missing)
        {
            if (explicitGpu)
                throw new CudaException($"--device {device}: {missing}");
            return Cpu(missing);
        }
        var context = CudaContext.Open(ordinal);
        return new ComputeBackend(context, context.Device.ToString(), forward ?? GpuForwardOptions.Default);
    }

    /// <summary>An encoder for <paramref name="bits"/> over <paramref name="table"/> on this backend, disposed with it.</summary>
    public ITileEncoder CreateEncoder(ReadOnlyMemory<float> table, int bits, int cpuThreads)
    {
        if (Cuda is null)
            return new TrellisEncoder(table, bits, cpuThreads);
        var encoder = new CudaTileEncoder(Cuda, table, bits);
        _owned.Add(encoder);
        return encoder;
    }

    public void Dispose()
    {
        foreach (var d in _owned)
            d.Dispose();
        _owned.Clear();
        Cuda?.Dispose();
    }
}
