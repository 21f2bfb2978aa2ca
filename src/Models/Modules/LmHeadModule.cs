using Converter.Compute;
using Converter.Models.Forward;
namespace Converter.Models.Modules;

/// <summary>
/// lm_head: final-normed hidden states → logits. With tied embeddings it reads model.embed_tokens.weight (as HF's
/// tie_weights does, even if the file also has an lm_head.weight) into its own copy, so quantizing the head leaves
/// the embedding untouched. The logits are then scaled (Cohere's logit_scale) and soft-capped (Gemma) as the
/// architecture asks.
/// </summary>
public sealed class LmHeadModule : ModelModule
{
    private readonly float _logitScale;
    private readonly float? _softCap;

    public LmHeadModule(TransformerSpec spec, IDenseAlgebra? algebra = null)
        : base(spec.Names.LmHead)
    {
        _logitScale = spec.LogitScale;
        _softCap = spec.FinalLogitSoftCap;
        Projection = new Linear(Name, spec.HiddenSize, spec.VocabSize, hasBias: false,
            spec.TiedEmbeddings ? Models.TensorNames.Weight(spec.Names.Embedding) : null, algebra);
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
        return batch.WithValues(HostForwardPass.Instance.Run(x, (pass, states) => Logits(pass, states, Projection)));
    }

    /// <summary>
    /// The logits of final-normed states <paramref name="x"/> (rows, hidden) on <paramref name="pass"/>'s backend, with
    /// <paramref name="projection"/> as the head (its own <see cref="Projection"/>, or the same layer with the original
    /// weight after a reconstruction replaced it: <see cref="Linear.WithWeight"/>), scaled and capped as the
    /// architecture asks.
    /// </summary>
    public Activations Logits(IForwardPass pass, Activations x, Linear projection)
    {
        EnsureLoaded();
        var logits = pass.Linear(projection, x);
        if (_logitScale != 1f)
            pass.Scale(logits, _logitScale);
        if (_softCap is { } cap)
            pass.SoftCap(logits, cap);
        return logits;
    }
}
