using Converter.Cli.Commands.Bench;
using Converter.Compute;
using Converter.Models;
using Converter.Models.Forward;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// The random layer `trellis bench forward` times, on the host: it loads (norms from its temporary file, linears in
/// memory), runs, and every block built from it shares one set of weight arrays, so that a GPU's weight cache
/// uploads them once however many variants are timed.
/// </summary>
public class SyntheticDecoderLayerTests
{
    [Test]
    public void BlocksLoadRunAndShareTheirWeights()
    {
        string file;
        using (var layer = new SyntheticDecoderLayer(SyntheticDecoderLayer.Shapes["small"], seed: 1))
        {
            file = layer.Tensors.FileOf(layer.Tensors.TensorNames[0]);
            Assert.That(layer.Tensors.TensorNames, Has.Count.EqualTo(2), "input_layernorm and post_attention_layernorm");
            var first = layer.Block(CpuDenseAlgebra.Instance, HostForwardPass.Instance);
            var second = layer.Block(CpuDenseAlgebra.Instance, HostForwardPass.Instance);
            Assert.That(first.Linears.Zip(second.Linears).All(p => ReferenceEquals(p.First.Weight.Data, p.Second.Weight.Data)), Is.True);
            // Uniform weights of variance 1/in: a 256-wide input's q_proj row has mean square 1/256.
            var q = first.Linears.First().Weight.Data;
            Assert.That(q.Average(w => (double)w * w), Is.EqualTo(1.0 / 256).Within(5).Percent);

            int hidden = layer.Spec.HiddenSize;
            var x = new Matrix(2 * 8, hidden, Enumerable.Range(0, 2 * 8 * hidden).Select(i => MathF.Sin(i)).ToArray());
            var output = first.Forward(SequenceBatch.FromTokens([new int[8], new int[8]]).WithValues(x)).RequireValues("output");
            Assert.That(output.Data, Has.All.Matches<float>(float.IsFinite));
            Assert.That(output.Data, Is.Not.EqualTo(x.Data), "the block changed its input");
        }
        Assert.That(File.Exists(file), Is.False, "the norms' temporary file is gone");
    }
}
