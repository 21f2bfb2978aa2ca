using Converter.Compute;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Regularize.Quantization;
using Converter.TestSupport;
using Converter.Trellis.Codebooks;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// <see cref="QuantizerTuning.SequentialCapture"/> on a random llama layer: each sublayer's linears are quantized
/// against the Hessian of their input as the block computes it with every earlier sublayer already quantized, rebuilt
/// here by hand from the converter's public steps (capture, finalize, quantize, reconstruct) one sublayer at a time.
/// </summary>
public sealed class SequentialCaptureTests
{
    // Any K shows the order of captures; 4 is the CPU encoder's fastest per tile (SyntheticModelFixture.LayoutBits): 42 s against 51 at 2.
    private const int Bits = 4;

    private sealed class Quiet : IStepProgress
    {
        public void Step(string description) { }
        public void Log(string line) { }
    }

    [Test]
    public void EachSublayerIsQuantizedOnTheInputsOfTheQuantizedSublayersBeforeIt()
    {
        string dir = RepoPaths.TestModel("rand-llama31");
        using var checkpoint = CheckpointReader.Open(dir);
        var config = ModelConfig.Load(dir);
        var random = new Random(5);
        int vocabulary = TransformerModel.FromConfig(config).Spec.VocabSize;
        var rows = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 24).Select(_ => random.Next(vocabulary)).ToArray()).ToList();

        var sequential = ConvertLayer(dir, checkpoint, config, rows, sequential: true, out var layerInput);

        // By hand: capture, quantize a sublayer, swap its reconstructions in, capture again.
        using var backend = ComputeBackend.Cpu();
        var layer = TransformerModel.FromConfig(config).Modules[1];
        layer.Load(checkpoint);
        var converter = Converter(dir, checkpoint, config, layer.Linears.ToDictionary(l => l.Name, _ => Bits), sequential: true, backend);
        var expected = new Dictionary<string, double>();
        // The later sublayers' damped Hessians from the first capture (every weight original: what a capture of the
        // whole block at once gives them) and from their own sublayer's.
        var unquantizedBlock = new Dictionary<LinearGroup, float[]>();
        var ownSublayer = new Dictionary<LinearGroup, float[]>();
        foreach (var sublayer in layer.LinearGroups.GroupBy(g => g.Sublayer).OrderBy(g => g.Key))
        {
            using var capture = new HessianCapture(backend.Algebra);
            layer.Forward(SequenceBatch.FromTokens(rows).WithValues(layerInput), capture);
            if (unquantizedBlock.Count == 0)
            {
                foreach (var group in layer.LinearGroups.Where(g => g.Sublayer != sublayer.Key))
                {
                    using var original = converter.FinalizeHessian(group, capture, new Quiet());
                    unquantizedBlock[group] = original.Damped!;
                }
            }
            var reconstructions = new Dictionary<Linear, Matrix>();
            foreach (var group in sublayer)
            {
                using var hessian = converter.FinalizeHessian(group, capture, new Quiet());
                ownSublayer[group] = hessian.Damped!;
                foreach (var linear in group.Linears)
                {
                    var q = converter.QuantizeAt(linear, hessian, Bits);
                    expected[linear.Name] = q.ProxyError;
                    reconstructions[linear] = converter.Reconstruct(q, linear);
                }
            }
            foreach (var (linear, weight) in reconstructions)
                linear.ReplaceWeight(weight);
        }

        Assert.That(sequential.Keys, Is.EquivalentTo(expected.Keys));
        foreach (var (name, proxy) in expected)
            Assert.That(sequential[name], Is.EqualTo(proxy), name);
        // Every later sublayer sees a different input than the capture of the unquantized block gives (so this test
        // tells the two apart).
        Assert.That(unquantizedBlock.Keys, Is.EquivalentTo(layer.LinearGroups.Where(g => g.Sublayer != layer.LinearGroups.Min(f => f.Sublayer))));
        foreach (var (group, original) in unquantizedBlock)
            Assert.That(ownSublayer[group], Is.Not.EqualTo(original), group.ToString());
    }

    /// <summary>Layer 0 of the model converted by <see cref="ModuleConverter"/> after its embedding: each linear's proxy error.</summary>
    private static Dictionary<string, double> ConvertLayer(string dir, CheckpointReader checkpoint, ModelConfig config, IReadOnlyList<int[]> rows, bool sequential, out Matrix layerInput)
    {
        using var backend = ComputeBackend.Cpu();
        var model = TransformerModel.FromConfig(config);
        var converter = Converter(dir, checkpoint, config, model.Modules[1].Linears.ToDictionary(l => l.Name, _ => Bits), sequential, backend);
        using var state = new CalibrationState(rows, null, []);
        converter.Convert(model.Modules[0], state, new Quiet());
        layerInput = state.Gather(Enumerable.Range(0, rows.Count).ToList());
        var result = converter.Convert(model.Modules[1], state, new Quiet());
        return result.Records.ToDictionary(r => r.Name, r => r.ProxyErr);
    }

    private static ModuleConverter Converter(string dir, CheckpointReader checkpoint, ModelConfig config, Dictionary<string, int> bits, bool sequential, ComputeBackend backend)
    {
        var settings = new ConvertSettings
        {
            ModelDir = dir,
            OutDir = dir + "-unused",
            WorkDir = dir + "-unused.work",
            Bits = Bits,
            Threads = 2,
            Tuning = QuantizerTuning.Exllamav3 with { SequentialCapture = sequential },
        };
        return new ModuleConverter(settings, checkpoint, TransformerModel.FromConfig(config).Spec.Names, new CodebookTableCache(), bits, backend);
    }
}
