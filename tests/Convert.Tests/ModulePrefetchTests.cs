using Converter.Conversion.Pipeline;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>The next module's weights read on a worker (<see cref="ModulePrefetch"/>), on a random two-layer llama.</summary>
public sealed class ModulePrefetchTests
{
    [Test]
    public void AStartedModuleIsTakenLoadedWithTheSameWeights()
    {
        using var checkpoint = CheckpointReader.Open(RepoPaths.TestModel("rand-llama31"));
        var model = TransformerModel.FromConfig(ModelConfig.Load(RepoPaths.TestModel("rand-llama31")));
        var layer = model.Modules[1];
        var other = model.Modules[2];
        using var prefetch = new ModulePrefetch(checkpoint);
        prefetch.Start(layer);
        Assert.That(prefetch.TryTake(other), Is.False, "another module was not read");
        Assert.That(prefetch.TryTake(layer), Is.True);
        Assert.That(layer.IsLoaded, Is.True);
        Assert.That(prefetch.TryTake(layer), Is.False, "taken once");
        var read = layer.Linears.Select(l => l.Weight.Data.ToArray()).ToList();
        layer.Release();
        layer.Load(checkpoint);
        Assert.That(layer.Linears.Select(l => l.Weight.Data.ToArray()), Is.EqualTo(read));
    }

    [Test]
    public void AModuleNeverTakenIsReleasedAtTheEnd()
    {
        using var checkpoint = CheckpointReader.Open(RepoPaths.TestModel("rand-llama31"));
        var model = TransformerModel.FromConfig(ModelConfig.Load(RepoPaths.TestModel("rand-llama31")));
        var (first, second) = (model.Modules[1], model.Modules[2]);
        using (var prefetch = new ModulePrefetch(checkpoint))
        {
            prefetch.Start(first);
            prefetch.Start(second);
            Assert.That(first.IsLoaded, Is.False, "a read replaced by another is dropped");
        }
        Assert.That(second.IsLoaded, Is.False);
    }
}
