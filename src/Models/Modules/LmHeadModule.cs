using Converter.Compute;
namespace Converter.Models.Modules;

/// <summary>
/// lm_head: final-normed hidden states → logits. With tied embeddings it reads model.embed_tokens.weight (as HF's
/// tie_weights does, even if the file also has an lm_head.weight) into its own copy, so quantizing the head leaves
/// the embedding untouched.
/// </summary>
public sealed class LmHeadModule : ModelModule
{
    public LmHeadModule(int hiddenSize, int vocabSize, bool tied, IDenseAlgebra? algebra = null)
        : base(Models.TensorNames.LmHead)
    {
        Projection = new Linear(Name, hiddenSize, vocabSize, hasBias: false,
            tied ? Models.TensorNames.Weight(Models.TensorNames.Embedding) : null, algebra);
        LinearGroups = [new LinearGroup(Name, LinearSite.Head, [Projection])];
    }

    public Linear Projection { get; }

    public override IReadOnlyList<LinearGroup> LinearGroups { get; }

    public override IEnumerable<string> TensorNames => [Projection.WeightTensor];

    public override bool IsLoaded => Projection.IsLoaded;

    public override void Load(IWeightSource weights) => weights.LoadLinear(Projection);

    public override void Release() => Projection.Release();

    public override SequenceBatch Forward(SequenceBatch batch, ILinearInputObserver? observer = null)
    {
        EnsureLoaded();
        var x = batch.RequireValues(Name);
        observer?.OnLinearInput(LinearGroups[0], x);
        return batch.WithValues(Projection.Forward(x));
    }
}
