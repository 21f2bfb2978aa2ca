using Converter.Compute;
using Converter.Models.Modules;
using Converter.Models.Running;

namespace Converter.Models.Tests.Models;

/// <summary>The module-at-a-time contract the quantizer relies on.</summary>
public class StreamingTests
{
    [Test]
    public void ModuleListIsEmbeddingLayersNormHead()
    {
        using var h = new ModelHarness();
        Assert.That(h.Model.Modules.Select(m => m.Name),
            Is.EqualTo(new[] { "model.embed_tokens", "model.layers.0", "model.layers.1", "model.norm", "lm_head" }));
        // rand-llama31 ties the head to the embedding.
        Assert.That(h.Model.Head.Projection.WeightTensor, Is.EqualTo("model.embed_tokens.weight"));
    }

    [Test]
    public void EveryCheckpointTensorBelongsToExactlyOneModuleExceptTheTiedHead()
    {
        foreach (var name in new[] { "rand-llama31", "rand-mistral", "rand-qwen3" })
        {
            using var h = new ModelHarness(name);
            var claimed = h.Model.Modules.Where(m => m != h.Model.Head || !h.Model.Spec.TiedEmbeddings)
                .SelectMany(m => m.TensorNames).ToList();
            Assert.That(claimed, Is.Unique, name);
            Assert.That(claimed, Is.EquivalentTo(h.Checkpoint.TensorNames), name);
        }
    }

    [Test]
    public void RunnerReleasesWhatItLoadedAndKeepsWhatTheCallerLoaded()
    {
        using var h = new ModelHarness();
        h.Model.Head.Load(h.Checkpoint);
        // A replaced weight must be used as is: a zero head gives zero logits.
        h.Model.Head.Projection.ReplaceWeight(new Matrix(h.Model.Spec.VocabSize, h.Model.Spec.HiddenSize));
        var result = ModelRunner.Run(h.Model, h.Checkpoint, SequenceBatch.FromTokens(h.RandomIds(8, 4)));
        Assert.That(result.Logits.Data, Is.All.EqualTo(0f));
        Assert.That(h.Model.Modules.Where(m => m.IsLoaded), Is.EqualTo(new ModelModule[] { h.Model.Head }));
    }

    [Test]
    public void ObserverSeesEachLinearGroupsInputOnce()
    {
        using var h = new ModelHarness("rand-qwen3");
        var observer = new RecordingObserver();
        var block = h.Model.Layers[0];
        h.Model.Embedding.Load(h.Checkpoint);
        var input = h.Model.Embedding.Forward(SequenceBatch.FromTokens(h.RandomIds(10, 5)));
        block.Load(h.Checkpoint);
        var output = block.Forward(input, observer);

        var spec = h.Model.Spec;
        Assert.That(observer.Calls.Select(c => (c.Group.Site, c.Input.Rows, c.Input.Cols)), Is.EqualTo(new[]
        {
            (LinearSite.AttentionInput, 10, spec.HiddenSize),
            (LinearSite.AttentionOutput, 10, spec.QueryWidth),
            (LinearSite.MlpInput, 10, spec.HiddenSize),
            (LinearSite.MlpOutput, 10, spec.IntermediateSize),
        }));
        Assert.That(observer.Calls[0].Group.Linears.Select(l => l.Name[15..]),
            Is.EqualTo(new[] { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" }));

        // The observed down_proj input really is what down_proj multiplies: out = h + down(a), h = out of attention half.
        var down = ((DenseMlp)block.FeedForward).Mlp.Down;
        var mlpOut = MatMul.MultiplyTransposed(observer.Calls[3].Input, down.Weight);
        var attnOut = MatMul.MultiplyTransposed(observer.Calls[1].Input, ((SelfAttention)block.Attention).O.Weight);
        var x = input.Values!;
        for (int i = 0; i < x.Data.Length; i++)
            Assert.That(output.Values!.Data[i], Is.EqualTo(x.Data[i] + attnOut.Data[i] + mlpOut.Data[i]).Within(1e-5), $"at {i}");
    }

    private sealed class RecordingObserver : ILinearInputObserver
    {
        public List<(LinearGroup Group, Matrix Input)> Calls { get; } = [];

        public void OnLinearInput(LinearGroup group, Matrix input) => Calls.Add((group, input.Clone()));
    }
}
