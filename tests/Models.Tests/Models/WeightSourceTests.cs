using Converter.Compute;
using Converter.Formats.Safetensors;
using Converter.Models.Running;

namespace Converter.Models.Tests.Models;

/// <summary>
/// Modules take their parameters from an <see cref="IWeightSource"/>: linears through <see cref="IWeightSource.LoadLinear"/>,
/// everything else by name from its tensors; <see cref="Linear.SetParameters"/> checks what a source hands over.
/// </summary>
public class WeightSourceTests
{
    [Test]
    public void CheckpointWeightsGiveTheSameForwardAsTheReader()
    {
        using var h = new ModelHarness("rand-qwen3");
        var batch = SequenceBatch.FromTokens(h.RandomIds(12, 3));
        var viaReader = ModelRunner.Run(h.Model, h.Checkpoint, batch).Logits;
        var viaSource = ModelRunner.Run(h.Model, new CheckpointWeights(h.Checkpoint), batch).Logits;
        Assert.That(viaSource.Data, Is.EqualTo(viaReader.Data));
    }

    [Test]
    public void EveryLinearIsAskedForOnceAndUsesWhatTheSourceGives()
    {
        using var h = new ModelHarness("rand-mistral");
        var source = new ZeroOutputProjections(h.Checkpoint);
        var result = ModelRunner.Run(h.Model, source, SequenceBatch.FromTokens(h.RandomIds(9, 1)));

        Assert.That(source.Requested, Is.EquivalentTo(h.Model.Modules.SelectMany(m => m.Linears).Select(l => l.Name)));
        Assert.That(source.Requested, Is.Unique);
        // With o_proj and down_proj zero, each block adds nothing to its residual input.
        var embedded = result.OutputOf(h.Model.Embedding);
        foreach (var layer in h.Model.Layers)
            Assert.That(result.OutputOf(layer).Data, Is.EqualTo(embedded.Data), layer.Name);
    }

    [Test]
    public void SetParametersChecksShapeAndBias()
    {
        var plain = new Linear("x.proj", inFeatures: 3, outFeatures: 2, hasBias: false);
        var biased = new Linear("y.proj", inFeatures: 3, outFeatures: 2, hasBias: true);
        Assert.That(() => plain.SetParameters(new Matrix(3, 2), null), Throws.ArgumentException.With.Message.Contains("x.proj").And.Message.Contains("(2, 3)"));
        Assert.That(() => plain.SetParameters(new Matrix(2, 3), [1f, 2f]), Throws.ArgumentException.With.Message.Contains("has no bias"));
        Assert.That(() => biased.SetParameters(new Matrix(2, 3), null), Throws.ArgumentException.With.Message.Contains("has bias"));
        Assert.That(() => biased.SetParameters(new Matrix(2, 3), [1f]), Throws.ArgumentException.With.Message.Contains("1 values"));

        var w = new Matrix(2, 3, [1, 2, 3, 4, 5, 6]);
        biased.SetParameters(w, [10f, 20f]);
        Assert.That(biased.IsLoaded, Is.True);
        Assert.That(biased.Forward(new Matrix(1, 3, [1, 0, -1])).Data, Is.EqualTo(new[] { 1f - 3f + 10f, 4f - 6f + 20f }));

        // Another weight of the same shape in place of its own (the head's original after a reconstruction), with its bias.
        var other = new Matrix(2, 3, [0, 1, 0, 2, 0, 2]);
        Assert.That(biased.Forward(new Matrix(1, 3, [1, 5, -1]), other).Data, Is.EqualTo(new[] { 5f + 10f, 2f - 2f + 20f }));
        Assert.That(biased.Weight, Is.SameAs(w), "its own weight is untouched");
        Assert.That(() => biased.Forward(new Matrix(1, 3), new Matrix(3, 2)), Throws.ArgumentException.With.Message.Contains("(2, 3)"));
    }

    /// <summary>Loads the checkpoint, but hands every output projection (o_proj, down_proj) over as zeros.</summary>
    private sealed class ZeroOutputProjections(ITensorReader reader) : IWeightSource
    {
        public List<string> Requested { get; } = [];

        public ITensorReader Tensors => reader;

        public void LoadLinear(Linear linear)
        {
            Requested.Add(linear.Name);
            if (linear.Name.EndsWith(".o_proj", StringComparison.Ordinal) || linear.Name.EndsWith(".down_proj", StringComparison.Ordinal))
                linear.SetParameters(new Matrix(linear.OutFeatures, linear.InFeatures), linear.HasBias ? new float[linear.OutFeatures] : null);
            else
                linear.Load(reader);
        }
    }
}
