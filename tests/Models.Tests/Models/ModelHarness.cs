using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Models.Tests.Models;

/// <summary>A small random test model opened for a test: its config-built model and its checkpoint.</summary>
internal sealed class ModelHarness : IDisposable
{
    public ModelHarness(string name = "rand-llama31")
    {
        var dir = RepoPaths.TestModel(name);
        Model = TransformerModel.FromConfig(ModelConfig.Load(dir));
        Checkpoint = CheckpointReader.Open(dir);
    }

    public TransformerModel Model { get; }

    public CheckpointReader Checkpoint { get; }

    /// <summary>Deterministic pseudo-random ids inside the vocabulary.</summary>
    public int[] RandomIds(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(Model.Spec.VocabSize)).ToArray();
    }

    public void Dispose() => Checkpoint.Dispose();
}
