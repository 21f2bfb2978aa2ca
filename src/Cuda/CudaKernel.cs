using System.Runtime.CompilerServices;

namespace Converter.Cuda;

/// <summary>
/// One <c>extern "C" __global__</c> kernel: the source file it is compiled from (src/Cuda/Kernels), its name, and its
/// parameter types in order, as C# types: <c>ulong</c> a device pointer, <c>int</c> an int, <c>long</c> a long long,
/// <c>float</c>, <c>double</c>. Every kernel is declared once in <see cref="CudaKernels"/>; a host-side test checks each
/// declaration against the signature in its source.
/// </summary>
public abstract class CudaKernel(string source, string name, IReadOnlyList<Type> parameters)
{
    /// <summary>The C# types a kernel parameter may be declared with (see the class summary).</summary>
    public static IReadOnlyList<Type> ParameterTypes { get; } = [typeof(ulong), typeof(int), typeof(long), typeof(float), typeof(double)];

    public string Source { get; } = source;

    public string Name { get; } = name;

    public IReadOnlyList<Type> Parameters { get; } = parameters;

    public override string ToString() => $"{Source}:{Name}";
}

/// <summary>
/// A kernel whose arguments are the tuple <typeparamref name="TArguments"/> (element names as in the source): a launch
/// with the wrong number or kind of arguments does not compile, and each argument takes the width its declared type
/// has in C (an int widened to a long long stays a long long).
/// </summary>
public sealed class CudaKernel<TArguments>(string source, string name) : CudaKernel(source, name, Flatten(typeof(TArguments), name))
    where TArguments : struct, ITuple
{
    /// <summary>Launches on the default stream of the module's context; the module must be compiled from <see cref="CudaKernel.Source"/>.</summary>
    public void Launch(CudaModule module, uint grid, uint block, int sharedBytes, TArguments arguments)
    {
        if (module.Source != Source)
            throw new InvalidOperationException($"kernel {Name} is in {Source}, the module was compiled from {module.Source}");
        Span<ulong> slots = stackalloc ulong[Parameters.Count];
        Fill(arguments, slots);
        module.Launch(Name, grid, block, sharedBytes, slots);
    }

    /// <summary>The arguments as the 8-byte slots cuLaunchKernel reads, one per parameter (a long tuple's rest included).</summary>
    internal static void Fill(TArguments arguments, Span<ulong> slots)
    {
        ITuple tuple = arguments;
        if (tuple.Length != slots.Length)
            throw new ArgumentException($"{tuple.Length} arguments for {slots.Length} slots", nameof(slots));
        for (int i = 0; i < slots.Length; i++)
            slots[i] = Slot(tuple[i]);
    }

    /// <summary>The 8-byte slot the kernel reads an argument from (little-endian: a 4-byte value is the low half).</summary>
    private static ulong Slot(object? value) => value switch
    {
        ulong pointer => pointer,
        int i => (uint)i,
        long l => (ulong)l,
        float f => BitConverter.SingleToUInt32Bits(f),
        double d => BitConverter.DoubleToUInt64Bits(d),
        _ => throw new InvalidOperationException($"a kernel argument of type {value?.GetType().Name ?? "null"} has no C counterpart"),
    };

    /// <summary>The element types of a value tuple, the nested rest of a long tuple included; refuses types with no C counterpart.</summary>
    private static Type[] Flatten(Type tuple, string name)
    {
        if (!tuple.IsGenericType || tuple.Namespace != "System" || !tuple.Name.StartsWith("ValueTuple`", StringComparison.Ordinal))
            throw new InvalidOperationException($"kernel {name}: arguments must be a value tuple, not {tuple.Name}");
        var elements = tuple.GetGenericArguments();
        Type[] all = elements.Length == 8 ? [.. elements[..7], .. Flatten(elements[7], name)] : elements;
        foreach (var t in all)
        {
            if (!ParameterTypes.Contains(t))
                throw new InvalidOperationException($"kernel {name}: a parameter of type {t.Name} has no C counterpart (use {string.Join(", ", ParameterTypes.Select(p => p.Name))})");
        }
        return all;
    }
}
