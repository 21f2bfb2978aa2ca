using Converter.Formats.Safetensors;
using Converter.Regularize.Reconstruction;
using Converter.TestSupport;
using Converter.Trellis.Codebooks;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

/// <summary>Our §4.3 reconstruction against exllamav3's fused reconstruct kernel on its own test vectors.</summary>
public class LinearReconstructionTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        from cb in new[] { "3inst", "mcg", "mul1" }
        from k in new[] { 2, 3, 4 }
        select new TestCaseData(cb, k);

    [TestCaseSource(nameof(Cases))]
    public void ReproducesTheKernelReconstruction(string codebook, int bits)
    {
        using var file = SafetensorsFile.Open(Path.Combine(RepoPaths.Reference, "exl3-kernel-vectors.safetensors"));
        string p = $"{codebook}.k{bits}.";
        var table = CodebookTable.Build(CodebookSpec.Parse(codebook));
        var w = LinearReconstruction.Reconstruct(file.ReadRaw<short>(p + "trellis"), 256, 384, bits, table.Values,
            file.ReadFloat32(p + "suh"), file.ReadFloat32(p + "svh"));
        var expected = file.ReadFloat32(p + "w");

        // The kernel computes in fp16 (its Hadamard butterflies round every stage), we in fp32 from the same fp16
        // inputs: the results agree to a few fp16 roundings of the matrix's scale, never to a wrong element.
        double sumSq = 0, errSq = 0, maxAbs = 0;
        for (int i = 0; i < w.Length; i++)
        {
            double e = w[i] - expected[i];
            sumSq += (double)expected[i] * expected[i];
            errSq += e * e;
            maxAbs = Math.Max(maxAbs, Math.Abs(e));
        }
        double rms = Math.Sqrt(sumSq / w.Length), relative = Math.Sqrt(errSq / sumSq);
        TestContext.Out.WriteLine($"{codebook} K={bits}: relative error {relative:E2}, max |diff| / rms {maxAbs / rms:E2}");
        Assert.That(relative, Is.LessThan(2e-3));
        Assert.That(maxAbs / rms, Is.LessThan(1e-2));
    }
}
