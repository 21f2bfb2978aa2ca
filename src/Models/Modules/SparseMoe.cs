using Converter.Compute;
using Converter.Models.Forward;

namespace Converter.Models.Modules;

/// <summary>
/// A mixture-of-experts MLP (<see cref="MixtureOfExperts"/>), e.g. <c>model.layers.N.block_sparse_moe</c>: the router
/// (kept unquantized) picks each token's top-k experts; each expert runs on its tokens and its output, times the
/// token's routing weight, is added into the result in expert order (transformers' index_add_ loop); shared experts
/// run on every token and are added last. With an observer (a calibration pass) every expert runs on every token, as
/// exllamav3 calibrates with <c>activate_all_experts</c>, so that each expert's down projection sees all rows; the
/// tokens it was not chosen for have weight 0, so the output is still the top-k mixture.
/// </summary>
public sealed class SparseMoe : IFeedForward
{
    private readonly MixtureOfExperts _moe;
    private readonly string? _correctionBiasTensor;
    private float[]? _correctionBias;

    /// <param name="module">The decoder block, the owner of the linear groups.</param>
    public SparseMoe(string module, TransformerSpec spec, IDenseAlgebra? algebra = null)
    {
        _moe = spec.Moe ?? throw new ArgumentException($"{module}: the spec has no mixture of experts", nameof(spec));
        Prefix = $"{module}.{_moe.Module}";
        var router = _moe.Router;
        Router = new Linear($"{Prefix}.{_moe.RouterModule}", spec.HiddenSize, router.Experts, hasBias: _moe.RouterBias, algebra: algebra);
        _correctionBiasTensor = _moe.CorrectionBias is { } bias ? $"{Router.Name}.{bias}" : null;
        Experts = Enumerable.Range(0, router.Experts)
            .Select(e => _moe.FusedExperts
                ? GatedMlp.FusedExpert($"{Prefix}.experts", e, router.Experts, spec.HiddenSize, _moe.ExpertIntermediateSize, spec.Activation, algebra)
                : new GatedMlp($"{Prefix}.experts.{e}", spec.HiddenSize, _moe.ExpertIntermediateSize, spec.Activation, _moe.ExpertNames, algebra: algebra))
            .ToArray();
        Shared = _moe.SharedIntermediateSize > 0
            ? new GatedMlp($"{Prefix}.{_moe.SharedModule}", spec.HiddenSize, _moe.SharedIntermediateSize, spec.Activation, MlpNames.Standard, algebra: algebra)
            : null;

        ExpertInput = new LinearGroup(module, LinearSite.ExpertInput, Experts.SelectMany(x => new[] { x.Gate, x.Up }).ToArray());
        ExpertOutputs = Experts.Select(x => new LinearGroup(module, LinearSite.ExpertOutput, [x.Down])).ToArray();
        var groups = new List<LinearGroup> { ExpertInput };
        groups.AddRange(ExpertOutputs);
        if (Shared is not null)
        {
            // The shared experts are a dense MLP beside the routed ones (exllamav3 ranks them with the MLPs).
            SharedGroups = [new LinearGroup(module, LinearSite.MlpInput, [Shared.Gate, Shared.Up]), new LinearGroup(module, LinearSite.MlpOutput, [Shared.Down])];
            groups.AddRange(SharedGroups);
        }
        LinearGroups = groups;
    }

    /// <summary><c>model.layers.N.block_sparse_moe</c> or <c>model.layers.N.mlp</c>.</summary>
    public string Prefix { get; }

    /// <summary>The router, hidden → one logit per expert; in no linear group, so it stays unquantized.</summary>
    public Linear Router { get; }

    public IReadOnlyList<GatedMlp> Experts { get; }

    public GatedMlp? Shared { get; }

    /// <summary>Gate and up of every routed expert.</summary>
    public LinearGroup ExpertInput { get; }

    /// <summary>Per expert, its down projection.</summary>
    public IReadOnlyList<LinearGroup> ExpertOutputs { get; }

    private LinearGroup[] SharedGroups { get; } = [];

    public IReadOnlyList<LinearGroup> LinearGroups { get; }

    /// <summary>The router's weight, bias (gpt-oss) and correction bias (sigmoid routing): copied unquantized.</summary>
    public IEnumerable<string> OtherTensors =>
        new[] { Router.WeightTensor, Router.BiasTensor, _correctionBiasTensor }.OfType<string>();

    public void Load(IWeightSource weights)
    {
        weights.LoadLinear(Router);
        foreach (var expert in Experts)
            expert.Load(weights);
        Shared?.Load(weights);
        _correctionBias = _correctionBiasTensor is { } bias ? WeightLoader.Read(weights.Tensors, bias, _moe.Router.Experts) : null;
    }

    public void Release()
    {
        Router.Release();
        foreach (var expert in Experts)
            expert.Release();
        Shared?.Release();
        _correctionBias = null;
    }

    public Activations Forward(IForwardPass pass, Activations x, ILinearInputObserver? observer) => Run(pass, x, observer, withOutput: true)!;

    public void Capture(IForwardPass pass, Activations x, ILinearInputObserver observer) => Run(pass, x, observer, withOutput: false);

    /// <summary>The forward; without <paramref name="withOutput"/> only as far as every group's input (no down products, no mixing).</summary>
    private Activations? Run(IForwardPass pass, Activations x, ILinearInputObserver? observer, bool withOutput)
    {
        var assignment = pass.Route(pass.Linear(Router, x), _moe.Router, _correctionBias, everyToken: observer is not null);
        pass.Observe(observer, ExpertInput, x);
        var output = withOutput ? pass.Zeros(x.Rows, x.Cols) : null;
        for (int e = 0; e < Experts.Count; e++)
        {
            // An expert no token chose adds nothing (and in a calibration pass its Hessian stays empty, which the
            // converter treats as unusable: quantized without error feedback).
            if (assignment.Count(e) == 0)
                continue;
            using (pass.Temporaries())
            {
                var rows = pass.Gather(x, assignment, e);
                if (output is null)
                {
                    Experts[e].Activated(pass, rows, null, ExpertOutputs[e], observer);
                    continue;
                }
                var y = Experts[e].Forward(pass, rows, null, ExpertOutputs[e], observer);
                pass.ScatterAdd(output, y, assignment, e);
            }
        }
        if (Shared is null)
            return output;
        if (output is null)
            Shared.Activated(pass, x, SharedGroups[0], SharedGroups[1], observer);
        else
            pass.Add(output, Shared.Forward(pass, x, SharedGroups[0], SharedGroups[1], observer));
        return output;
    }
}
