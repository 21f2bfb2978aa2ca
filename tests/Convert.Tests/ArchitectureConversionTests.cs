using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.TestSupport;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>
/// Every architecture beyond the Llama family converts through the CLI (2 bpw, small calibration, fp16 head), writes
/// the names exllamav3 reads (fused sources split into q/k/v and gate/up, norms in their source dtype and values), and
/// evaluates against its original. The fixtures are ../shared's random models; skipped without it.
/// </summary>
[NonParallelizable]
public class ArchitectureConversionTests
{
    private static readonly string[] Fixtures = ["rand-gemma2", "rand-gemma3", "rand-phi3", "rand-glm4", "rand-olmo3", "rand-smollm3", "rand-cohere"];

    [TestCaseSource(nameof(Fixtures))]
    public void ConvertsAndEvaluates(string fixture)
    {
        var source = RepoPaths.RequireSharedModel(fixture);
        var outDir = NewPath(fixture);
        var (code, _, log) = Run(ConvertArgs(source, outDir, 2));
        Assert.That(code, Is.EqualTo(0), log);

        var model = TransformerModel.FromConfig(ModelConfig.Load(source));
        using (var output = CheckpointReader.Open(outDir))
        using (var original = CheckpointReader.Open(source))
        {
            foreach (var linear in model.Layers.SelectMany(l => l.Linears))
            {
                Assert.That(output.Contains(linear.Name + ".trellis"), linear.Name);
                if (linear.BiasTensor is { } bias)
                    Assert.That(output.Info(bias).DType, Is.EqualTo(DType.F16), "exllamav3 adds only fp16 biases to EXL3 linears");
            }
            Assert.That(output.TensorNames.Where(n => n.Contains("qkv_proj") || n.Contains("gate_up_proj")), Is.Empty, "fused sources are written split");
            var norms = model.Modules.SelectMany(m => m.TensorNames).Where(n => n.Contains("norm", StringComparison.Ordinal)).ToList();
            Assert.That(norms, Is.Not.Empty);
            foreach (var norm in norms)
            {
                Assert.That(output.Info(norm).DType, Is.EqualTo(original.Info(norm).DType), norm);
                Assert.That(output.RawBytes(norm).SequenceEqual(original.RawBytes(norm)), norm + " is copied unchanged (Gemma's 1 + w is the loader's)");
            }
        }

        double kl = EvalKl(outDir, source, $"{fixture}: 2 bpw");
        // Random weights at 2 bpw: measured KL 0.01-0.1; a broken forward or layout gives KL of order 1 or NaN.
        Assert.That(kl, Is.GreaterThan(0).And.LessThan(0.5));
    }
}
