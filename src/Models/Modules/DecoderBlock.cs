using Converter.Compute;
using Converter.Models.Forward;
using Converter.Models.Rotary;

namespace Converter.Models.Modules;

/// <summary>
/// model.layers.N with the norms its architecture places (<see cref="BlockNorms"/>):
/// h = x + norm_ao(attn(norm_ai(x))); out = h + norm_mo(mlp(norm_mi(h))), an absent norm passing its input through;
/// a parallel block (Cohere) computes out = x + attn(n) + mlp(n) with n = norm_ai(x). The MLP is dense or, in a
/// sparse layer, a mixture of experts (<see cref="IFeedForward"/>); the attention is grouped-query or latent
/// (<see cref="IAttention"/>). One forward for every backend: the operations
/// run on <see cref="IForwardBackend"/>.
/// </summary>
public sealed class DecoderBlock : ModelModule
{
    private readonly TransformerSpec _spec;
    private readonly IForwardBackend _backend;
    private readonly Dictionary<string, float[]> _norms = [];
    private bool _loaded;

    /// <param name="rotary">The layer's rotary embedding; null for a layer without RoPE.</param>
    /// <param name="backend">Where the forward's operations run (the host when null).</param>
    public DecoderBlock(int index, TransformerSpec spec, RotaryEmbedding? rotary, IDenseAlgebra? algebra = null, IForwardBackend? backend = null)
        : base(spec.Names.Layer(index))
    {
        _spec = spec;
        _backend = backend ?? HostForwardPass.Instance;
        Index = index;
        Layer = spec.LayerAttention[index];
        Attention = spec.LatentAttention is null
            ? new SelfAttention(Name, spec, Layer, rotary, algebra)
            : new LatentAttention(Name, spec, rotary, algebra);
        FeedForward = spec.IsSparse(index) ? new SparseMoe(Name, spec, algebra) : new DenseMlp(Name, spec, algebra);
        LinearGroups = [.. Attention.LinearGroups, .. FeedForward.LinearGroups];
    }

    public int Index { get; }

    public TransformerSpec Spec => _spec;

    /// <summary>This layer's window and rotary setting.</summary>
    public LayerAttention Layer { get; }

    /// <summary>Grouped-query attention or, with <see cref="TransformerSpec.LatentAttention"/>, latent attention.</summary>
    public IAttention Attention { get; }

    /// <summary>The dense MLP or, in a sparse layer, the mixture of experts.</summary>
    public IFeedForward FeedForward { get; }

    public override IReadOnlyList<LinearGroup> LinearGroups { get; }

    private IEnumerable<string> NormTensorNames => _spec.BlockNorms.Present.Select(n => Models.TensorNames.Weight(Name + "." + n));

    public override IEnumerable<string> TensorNames =>
        Linears.SelectMany(l => l.SourceTensors)
            .Distinct()
            .Concat(FeedForward.OtherTensors)
            .Concat(Attention.OtherTensors)
            .Concat(NormTensorNames);

    public override bool IsLoaded => _loaded;

    /// <summary>The weight of block norm <paramref name="name"/> (e.g. <c>input_layernorm</c>); the block must be loaded.</summary>
    public ReadOnlyMemory<float> NormWeight(string name) =>
        _loaded && _norms.TryGetValue(name, out var w) ? w : throw new InvalidOperationException($"module {Name} has no loaded norm {name}");

    public override void Load(IWeightSource weights)
    {
        try
        {
            Attention.Load(weights);
            FeedForward.Load(weights);
            foreach (var norm in _spec.BlockNorms.Present)
                _norms[norm] = WeightLoader.Read(weights.Tensors, Models.TensorNames.Weight(Name + "." + norm), _spec.HiddenSize);
            _loaded = true;
        }
        catch
        {
            // A load that failed halfway holds nothing, rather than some layers' weights.
            Release();
            throw;
        }
    }

    public override void Release()
    {
        _loaded = false;
        _norms.Clear();
        Attention.Release();
        FeedForward.Release();
    }

    public override SequenceBatch Forward(SequenceBatch batch, ILinearInputObserver? observer = null) => Forward(batch, observer, null);

    /// <summary>The block's forward, starting from and keeping <paramref name="stash"/>'s points for the batch's rows (<see cref="StageStash"/>).</summary>
    public SequenceBatch Forward(SequenceBatch batch, ILinearInputObserver? observer, StashRun? stash) =>
        batch.WithValues(_backend.Run(HiddenStates(batch), (pass, input) => Forward(pass, input, batch.Tokens, observer, FullReach, stash)));

    public override void Capture(SequenceBatch batch, ILinearInputObserver observer) => Capture(batch, observer, null);

    /// <summary><see cref="Capture(SequenceBatch, ILinearInputObserver)"/> with a stash, as <see cref="Forward(SequenceBatch, ILinearInputObserver?, StashRun?)"/>.</summary>
    public void Capture(SequenceBatch batch, ILinearInputObserver observer, StashRun? stash) =>
        _backend.Run(HiddenStates(batch), (pass, input) => Forward(pass, input, batch.Tokens, observer, Reach(observer), stash));

    /// <summary>The batch's hidden states, checked against the block's width.</summary>
    private Matrix HiddenStates(SequenceBatch batch)
    {
        EnsureLoaded();
        var x = batch.RequireValues(Name);
        if (x.Cols != _spec.HiddenSize || x.Rows != batch.Rows * batch.Tokens)
            throw new ArgumentException($"{Name}: hidden states {x.ShapeText} are not ({batch.Rows}·{batch.Tokens}, {_spec.HiddenSize})", nameof(batch));
        return x;
    }

    public override ResidentOutput? TryForward(ResidentStates states, IReadOnlyList<int> rows, ILinearInputObserver? observer, ResidentRun run)
    {
        if (_backend is not IResidentForwardBackend resident || !resident.Runs(states))
            return null;
        EnsureLoaded();
        if (states.Width != _spec.HiddenSize)
            throw new ArgumentException($"{Name}: hidden states of width {states.Width} are not {_spec.HiddenSize} wide", nameof(states));
        int reach = run.WriteBack || run.KeepRows > 0 || observer is null ? FullReach : Reach(observer);
        return resident.Run(states, rows, run, (pass, input) => Forward(pass, input, states.Tokens, observer, reach, run.Stash));
    }

    /// <summary>A forward whose output is wanted runs every sublayer.</summary>
    private const int FullReach = int.MaxValue;

    /// <summary>The last <see cref="LinearGroup.Sublayer"/> whose input <paramref name="observer"/> watches (−1: none).</summary>
    private int Reach(ILinearInputObserver observer) =>
        LinearGroups.Where(observer.Observes).Select(g => g.Sublayer).DefaultIfEmpty(-1).Max();

    /// <summary>
    /// The block's forward; with <paramref name="reach"/> below <see cref="FullReach"/> the output is not wanted and it
    /// stops once the groups up to that sublayer have seen their inputs: after the attention's input (a sequential
    /// capture of q/k/v), after o_proj's, at the MLP's (gate/up: the MLP itself is not run), or at down_proj's (whose
    /// product is not run either). An 8B layer's sequential drift capture ran both streams through the whole block
    /// once per sublayer (8 block forwards for 1).
    /// With <paramref name="stash"/> it starts from the latest point the rows hold and keeps the points that are final
    /// at the stash's stage; a serial block only (a parallel block's MLP reads the block's input).
    /// </summary>
    private Activations Forward(IForwardPass pass, Activations x, int tokens, ILinearInputObserver? observer, int reach = FullReach, StashRun? stash = null)
    {
        var norms = _spec.BlockNorms;
        if (_spec.ParallelBlock)
            return ParallelForward(pass, x, tokens, observer, reach);
        Activations residual;
        if (stash?.Holds(StashPoint.Residual) == true)
        {
            CheckSkipped(observer, StashPoint.Residual);
            residual = stash.Load(pass, StashPoint.Residual);
        }
        else
        {
            Activations attended;
            if (stash?.Holds(StashPoint.Attended) == true)
            {
                CheckSkipped(observer, StashPoint.Attended);
                attended = stash.Load(pass, StashPoint.Attended);
            }
            else
            {
                var attentionInput = Normalize(pass, x, norms.AttentionInput);
                if (reach <= 0)
                    return ObserveAttentionInput(pass, observer, attentionInput);
                attended = Attention.Attend(pass, attentionInput, tokens, observer);
                stash?.Keep(pass, StashPoint.Attended, attended);
            }
            residual = Normalize(pass, Attention.Project(pass, attended, observer), norms.AttentionOutput);
            if (reach < MlpInputSublayer)
                return residual;
            pass.Add(residual, x);
            stash?.Keep(pass, StashPoint.Residual, residual);
        }
        var mlpInput = Normalize(pass, residual, norms.MlpInput);
        if (reach <= MlpInputSublayer)
            return ObserveMlpInput(pass, observer, mlpInput);
        if (reach != FullReach)
        {
            FeedForward.Capture(pass, mlpInput, observer!);
            return mlpInput;
        }
        var mlp = Normalize(pass, FeedForward.Forward(pass, mlpInput, observer), norms.MlpOutput);
        pass.Add(mlp, residual);
        return mlp;
    }

    /// <summary>CohereDecoderLayer: out = x + attn(n) + mlp(n), n = norm_ai(x).</summary>
    private Activations ParallelForward(IForwardPass pass, Activations x, int tokens, ILinearInputObserver? observer, int reach)
    {
        var norms = _spec.BlockNorms;
        var attentionInput = Normalize(pass, x, norms.AttentionInput);
        if (reach <= 0)
            return ObserveAttentionInput(pass, observer, attentionInput);
        // The MLP reads the block's normed input: a capture of its input groups alone needs no attention.
        if (reach == MlpInputSublayer && !Attention.LinearGroups.Any(g => observer?.Observes(g) == true))
            return ObserveMlpInput(pass, observer, attentionInput);
        var attention = Normalize(pass, Attention.Forward(pass, attentionInput, tokens, observer), norms.AttentionOutput);
        if (reach < MlpInputSublayer)
            return attention;
        if (reach != FullReach)
        {
            FeedForward.Capture(pass, attentionInput, observer!);
            return attention;
        }
        var parallel = Normalize(pass, FeedForward.Forward(pass, attentionInput, observer), norms.MlpOutput);
        pass.Add(parallel, attention);
        pass.Add(parallel, x);
        return parallel;
    }

    /// <summary>The sublayer of the MLP's input groups: a capture that reaches only this far runs no MLP.</summary>
    private static readonly int MlpInputSublayer = LinearGroup.SublayerOf(LinearSite.MlpInput);

    private Activations ObserveAttentionInput(IForwardPass pass, ILinearInputObserver? observer, Activations attentionInput)
    {
        foreach (var group in Attention.LinearGroups.Where(g => g.Site == LinearSite.AttentionInput))
            pass.Observe(observer, group, attentionInput);
        return attentionInput;
    }

    /// <summary>Shows the MLP's input groups (gate/up, the routed experts' and a shared expert's) their input, as the MLP's forward would.</summary>
    private Activations ObserveMlpInput(IForwardPass pass, ILinearInputObserver? observer, Activations mlpInput)
    {
        foreach (var group in FeedForward.LinearGroups.Where(g => g.Sublayer == MlpInputSublayer))
            pass.Observe(observer, group, mlpInput);
        return mlpInput;
    }

    /// <summary>A forward that starts at <paramref name="point"/> shows nothing before it: an observer of a group there would miss its input.</summary>
    private void CheckSkipped(ILinearInputObserver? observer, StashPoint point)
    {
        if (observer is not null && LinearGroups.FirstOrDefault(g => g.Sublayer < StashRun.FinalFrom(point) && observer.Observes(g)) is { } missed)
            throw new InvalidOperationException($"{Name}: a forward from the stashed {point} values would not show {missed} its input");
    }

    private Activations Normalize(IForwardPass pass, Activations x, string? norm) =>
        norm is null ? x : pass.Norm(x, _spec.Norm, _norms[norm], _spec.NormEps);
}
