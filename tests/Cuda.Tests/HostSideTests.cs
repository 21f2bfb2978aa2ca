using System.Reflection;
using System.Runtime.CompilerServices;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Cuda.Trellis;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>What the CUDA layer guarantees without a GPU: it finds its kernels, sizes them to fit, and explains a missing driver.</summary>
[TestFixture]
public sealed class HostSideTests
{
    /// <summary>Every declared kernel's source is embedded, and the registry lists each source it declares kernels of.</summary>
    [Test]
    public void KernelSourcesAreEmbedded()
    {
        Assert.That(CudaKernels.All.Select(k => k.Source).Distinct(), Is.EquivalentTo(CudaKernels.Sources));
        foreach (var source in CudaKernels.Sources)
            Assert.That(KernelSignatures.Parse(KernelCompiler.Source(source)), Is.Not.Empty, source);
    }

    /// <summary>
    /// Each registry entry matches its kernel's <c>extern "C" __global__</c> signature in the source: the name, the
    /// number of parameters, each one's type (a pointer as a device address, int, long long, float, double) and its
    /// name (ignoring case and underscores, so spanFeedback and span_feedback are one name).
    /// </summary>
    [Test]
    public void RegistryMatchesTheKernelSignatures()
    {
        var fields = typeof(CudaKernels).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.FieldType.IsAssignableTo(typeof(CudaKernel))).ToList();
        Assert.That(fields.Select(f => f.GetValue(null)), Is.EquivalentTo(CudaKernels.All), "CudaKernels.All lists every declaration");
        foreach (var field in fields)
        {
            var kernel = (CudaKernel)field.GetValue(null)!;
            var signatures = KernelSignatures.Parse(KernelCompiler.Source(kernel.Source)).Where(s => s.Name == kernel.Name).ToList();
            Assert.That(signatures, Has.Count.EqualTo(1), $"{kernel}: one extern \"C\" __global__ kernel of that name in the source");
            var parameters = signatures[0].Parameters;
            // The compiler records a long tuple's names in order, then null for each element of its nested rest tuples.
            var names = field.GetCustomAttribute<TupleElementNamesAttribute>()?.TransformNames ?? [];
            Assert.That(kernel.Parameters, Has.Count.EqualTo(parameters.Count), $"{kernel}: parameter count");
            Assert.That(names.Take(parameters.Count).ToList(), Has.Count.EqualTo(parameters.Count).And.All.Not.Null, $"{kernel}: every argument is named");
            Assert.That(names.Skip(parameters.Count), Has.All.Null, $"{kernel}: no names beyond the parameters");
            for (int i = 0; i < parameters.Count; i++)
            {
                var p = parameters[i];
                Assert.That(kernel.Parameters[i], Is.EqualTo(KernelSignatures.CSharpType(p)), $"{kernel}: parameter {i} ({p.CType}{(p.IsPointer ? "*" : "")} {p.Name})");
                Assert.That(Plain(names[i] ?? ""), Is.EqualTo(Plain(p.Name)), $"{kernel}: parameter {i} is named {p.Name} in the source");
            }
        }
    }

    /// <summary>Every kernel in the sources is declared in the registry or listed, with its reason, as unused.</summary>
    [Test]
    public void EveryKernelInTheSourcesIsRegistered()
    {
        var inSources = CudaKernels.Sources.SelectMany(s => KernelSignatures.Parse(KernelCompiler.Source(s)).Select(k => (s, k.Name))).ToList();
        var declared = CudaKernels.All.Select(k => (k.Source, k.Name)).ToList();
        Assert.That(declared, Is.Unique);
        Assert.That(inSources.Where(k => !CudaKernels.Unused.ContainsKey(k.Name)), Is.EquivalentTo(declared));
        Assert.That(CudaKernels.Unused.Keys.Intersect(declared.Select(k => k.Name)), Is.Empty, "an unused kernel is not also declared");
    }

    /// <summary>A declaration with an argument type C has no counterpart for (here uint: int or unsigned?) is refused.</summary>
    [Test]
    public void DeclarationsRefuseTypesWithoutACCounterpart()
    {
        Assert.That(() => new CudaKernel<(ulong X, uint N)>(CudaKernels.DenseSource, "k"),
            Throws.InvalidOperationException.With.Message.Contains("k").And.Message.Contains("UInt32"));
        Assert.That(new CudaKernel<(ulong A, int B, long C, float D, double E, ulong F, ulong G, int H, long I)>(CudaKernels.DenseSource, "k").Parameters,
            Is.EqualTo(new[] { typeof(ulong), typeof(int), typeof(long), typeof(float), typeof(double), typeof(ulong), typeof(ulong), typeof(int), typeof(long) }),
            "a tuple past seven elements is read through its nested rest");
    }

    /// <summary>
    /// The slots a launch passes: pointers and long longs as they are, an int and a float in the low half (a negative
    /// int not sign-extended, as the kernel reads only 4 bytes), a double's bits; a tuple past seven elements in order.
    /// </summary>
    [Test]
    public void ArgumentsBecomeTheSlotsTheKernelReads()
    {
        var slots = new ulong[9];
        CudaKernel<(ulong A, int B, long C, float D, double E, ulong F, ulong G, int H, long I)>.Fill((0xDEADBEEF00000000UL, -1, -2L, 1.5f, 0.25, 7UL, 8UL, 9, 10L), slots);
        Assert.That(slots, Is.EqualTo(new[] { 0xDEADBEEF00000000UL, 0xFFFFFFFFUL, unchecked((ulong)-2L), BitConverter.SingleToUInt32Bits(1.5f), BitConverter.DoubleToUInt64Bits(0.25), 7UL, 8UL, 9UL, 10UL }));
    }

    /// <summary>The signature parser the checks above rely on reads __launch_bounds__, several lines, and skips comments.</summary>
    [Test]
    public void ParserReadsLaunchBoundsAndMultiLineSignatures()
    {
        var parsed = KernelSignatures.Parse("""
            // extern "C" __global__ void commented_out(int a)
            extern "C" __global__ void __launch_bounds__(NT, 1)
            search(const float* __restrict__ targets, int tiles,
                   u16* __restrict__ states, long long n, double add)
            { }
            """);
        Assert.That(parsed.Select(k => k.Name), Is.EqualTo(new[] { "search" }));
        Assert.That(parsed[0].Parameters.Select(KernelSignatures.CSharpType), Is.EqualTo(new[] { typeof(ulong), typeof(int), typeof(ulong), typeof(long), typeof(double) }));
        Assert.That(parsed[0].Parameters.Select(p => p.Name), Is.EqualTo(new[] { "targets", "tiles", "states", "n", "add" }));
    }

    private static string Plain(string name) => name.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    /// <summary>
    /// NVRTC refuses an extern "C" kernel named like a CUDA math function ("more than one instance of overloaded
    /// function 'norm' has C linkage"): a kernel once called norm broke every GPU forward, and only a GPU showed it.
    /// </summary>
    [TestCase("forward.cu")]
    [TestCase("attention.cu")]
    [TestCase("moe.cu")]
    [TestCase("dense.cu")]
    [TestCase("ldlq.cu")]
    [TestCase("viterbi.cu")]
    public void KernelNamesDoNotShadowTheCudaMathLibrary(string file)
    {
        string[] math = ["norm", "norm3d", "norm4d", "normf", "rnorm", "rnormf", "exp", "expf", "log", "logf", "pow", "powf", "sqrt",
            "sqrtf", "rsqrt", "tanh", "tanhf", "erf", "sin", "cos", "fma", "fmaf", "abs", "fabs", "max", "min", "round", "trunc", "floor", "ceil"];
        var names = System.Text.RegularExpressions.Regex.Matches(KernelCompiler.Source(file), @"__global__\s+void\s+(\w+)\s*\(")
            .Select(m => m.Groups[1].Value).ToList();
        Assert.That(names, Is.Not.Empty);
        Assert.That(names.Intersect(math), Is.Empty);
    }

    [Test]
    public void SearchSharedMemoryFitsEveryK([Range(1, 8)] int bits)
    {
        // sm_80 allows 163 KiB of dynamic shared memory per block, sm_90 227 KiB; the kernel must fit the smaller.
        Assert.That(CudaTileEncoder.SharedBytes(bits, CudaTileEncoder.TilesPerBlockAt(bits)), Is.LessThanOrEqualTo(163 * 1024));
    }

    /// <summary>
    /// The host's mirror of the search kernel's BlockShared equals sizeof(BlockShared) as nvcc 13 laid it out for
    /// sm_90 (printed by a harness that includes viterbi.cu, 2026-12-03): a launch with fewer bytes than the struct
    /// would write past the block's shared memory.
    /// </summary>
    [TestCase(1, 132_248)]
    [TestCase(2, 133_336)]
    [TestCase(3, 67_800)]
    [TestCase(4, 67_800)]
    [TestCase(5, 35_032)]
    [TestCase(6, 18_648)]
    [TestCase(7, 10_456)]
    [TestCase(8, 6_360)]
    public void SearchSharedMemoryMirrorsTheKernelStruct(int bits, int bytes) =>
        Assert.That(CudaTileEncoder.SharedBytes(bits, CudaTileEncoder.TilesPerBlockAt(bits)), Is.EqualTo(bytes));

    /// <summary>
    /// The fused attention kernel's static shared memory fits the 48 KiB a block gets without opting in, for every
    /// value width it takes (its arrays do not depend on the key width), and the widest is close to the limit, so
    /// the mirror of the kernel's arrays is not vacuous (ptxas reports the same 42,496 bytes for value width 256 and
    /// 34,304 for 128, NVRTC 11.8 for sm_80).
    /// </summary>
    [Test]
    public void FusedAttentionSharedMemoryFitsWithoutOptIn()
    {
        for (int dv = 1; dv <= CudaForwardBackend.MaxFusedValueWidth; dv++)
            Assert.That(CudaForwardBackend.FusedAttentionSharedBytes(dv), Is.LessThanOrEqualTo(48 * 1024), $"value width {dv}");
        Assert.That(CudaForwardBackend.FusedAttentionSharedBytes(CudaForwardBackend.MaxFusedValueWidth), Is.GreaterThan(40 * 1024));
        Assert.That(KernelCompiler.Source(CudaKernels.AttentionSource), Does.Contain("__shared__ float qs[DC][BQ + PAD];")
            .And.Contain("__shared__ float ks[DC][BK + PAD];").And.Contain("__shared__ float ps[BQ][BK + PAD];").And.Contain("__shared__ float vs[VC][VALUE_PAD];")
            .And.Contain("#define BQ 64").And.Contain("#define BK 64").And.Contain("#define DC 16").And.Contain("#define VC 16").And.Contain("#define PAD 4"),
            "the arrays the C# mirror counts");
    }

    /// <summary>
    /// Which attention path a row length takes: auto switches to the fused kernel at
    /// <see cref="CudaForwardBackend.FusedAttentionTokens"/> and keeps the products for value heads the kernel cannot
    /// hold; an explicit choice is obeyed, and an explicit fused that cannot run is an error, not a silent fallback.
    /// </summary>
    [Test]
    public void AttentionPathFollowsTheOptionAndTheRowLength()
    {
        int threshold = CudaForwardBackend.FusedAttentionTokens, widest = CudaForwardBackend.MaxFusedValueWidth;
        Assert.That(CudaForwardBackend.TakesFusedAttention(GpuAttention.Auto, threshold, 128), Is.True);
        Assert.That(CudaForwardBackend.TakesFusedAttention(GpuAttention.Auto, threshold - 1, 128), Is.False);
        Assert.That(CudaForwardBackend.TakesFusedAttention(GpuAttention.Auto, 4096, widest + 1), Is.False);
        Assert.That(CudaForwardBackend.TakesFusedAttention(GpuAttention.Products, 4096, 128), Is.False);
        Assert.That(CudaForwardBackend.TakesFusedAttention(GpuAttention.Fused, 1, widest), Is.True);
        Assert.That(() => CudaForwardBackend.TakesFusedAttention(GpuAttention.Fused, 4096, widest + 1), Throws.TypeOf<NotSupportedException>());
    }

    [TestCase("fp32", GpuMath.Fp32)]
    [TestCase("TF32", GpuMath.Tf32)]
    public void GpuMathNamesRoundTrip(string text, GpuMath math)
    {
        Assert.That(GpuForwardOptions.ParseMath(text), Is.EqualTo(math));
        Assert.That(GpuForwardOptions.ParseMath(GpuForwardOptions.Name(math)), Is.EqualTo(math));
        Assert.That(GpuForwardOptions.ParseMath("fp16"), Is.Null);
        Assert.That(GpuForwardOptions.Default, Is.EqualTo(new GpuForwardOptions(GpuMath.Fp32, GpuAttention.Auto)), "FP32 stays the default");
    }

    [Test]
    public void DiscoveryExplainsAMissingGpu()
    {
        var devices = CudaDevice.Discover(out var whyNone);
        if (devices.Count > 0)
            Assert.Ignore($"a GPU is present: {devices[0]}");
        Assert.That(whyNone, Is.Not.Null.And.Not.Empty);
    }
}
