using Converter.Compute;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Models.Rotary;

namespace Converter.Models.Tests.Models;

/// <summary>
/// <see cref="DecoderBlock.Capture"/>: a forward whose output nobody wants stops once the watched groups have seen
/// their inputs (a sequential capture's early sublayers), and shows them exactly what the whole forward shows.
/// </summary>
public sealed class PartialCaptureTests
{
    [TestCase(LinearSite.AttentionInput, new string[0])]
    [TestCase(LinearSite.AttentionOutput, new[] { "q_proj", "k_proj", "v_proj", "o_proj" })]
    [TestCase(LinearSite.MlpInput, new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" })]
    [TestCase(LinearSite.MlpOutput, new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" })]
    public void ACaptureRunsOnlyAsFarAsItsGroupsAndShowsThemTheForwardsInputs(LinearSite site, string[] expectedLinears)
    {
        using var h = new ModelHarness();
        var spec = h.Model.Spec;
        var rotary = spec.LayerAttention[1].Rope is { } rope ? new RotaryEmbedding(rope, spec.RotaryDims) : null;
        var counter = new CountingPass();
        var block = new DecoderBlock(1, spec, rotary, backend: counter);
        block.Load(h.Checkpoint);
        var rng = new Random(4);
        var x = new Matrix(2 * 12, spec.HiddenSize, Enumerable.Range(0, 2 * 12 * spec.HiddenSize).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
        var batch = SequenceBatch.FromTokens([h.RandomIds(12, 1), h.RandomIds(12, 2)]).WithValues(x);
        var watched = block.LinearGroups.Single(g => g.Site == site);

        var whole = new Recorder(watched);
        block.Forward(batch, whole);
        counter.Linears.Clear();
        var partial = new Recorder(watched);
        block.Capture(batch, partial);

        Assert.That(counter.Linears.Select(n => n.Split('.')[^1]), Is.EquivalentTo(expectedLinears), "linears the capture multiplied by");
        Assert.That(partial.Inputs, Has.Count.EqualTo(1));
        Assert.That(partial.Inputs[0], Is.EqualTo(whole.Inputs[0]), "the watched group's input, to the bit");
    }

    /// <summary>Keeps a copy of each input of one group.</summary>
    private sealed class Recorder(LinearGroup watched) : ILinearInputObserver
    {
        public List<float[]> Inputs { get; } = [];

        public bool Observes(LinearGroup group) => group == watched;

        public void OnLinearInput(LinearGroup group, Matrix input) => Inputs.Add((float[])input.Data.Clone());
    }

    /// <summary>The host's pass, noting every linear it multiplies by.</summary>
    private sealed class CountingPass : IForwardPass, IForwardBackend
    {
        private static readonly HostForwardPass Host = HostForwardPass.Instance;

        public List<string> Linears { get; } = [];

        public Matrix Run(Matrix input, Func<IForwardPass, Activations, Activations> body) => Host.Run(input, (_, x) => body(this, x));

        public Activations Linear(Linear linear, Activations x)
        {
            Linears.Add(linear.Name);
            return Host.Linear(linear, x);
        }

        public Activations Norm(Activations x, NormKind kind, ReadOnlyMemory<float> weight, float eps) => Host.Norm(x, kind, weight, eps);
        public void Rope(Activations x, int tokens, int heads, int headDim, RotaryTable table, RotaryPairing pairing) => Host.Rope(x, tokens, heads, headDim, table, pairing);
        public Activations Attend(Activations q, Activations k, Activations v, int tokens, AttentionShape shape) => Host.Attend(q, k, v, tokens, shape);
        public Activations Columns(Activations x, int heads, int offset, int width) => Host.Columns(x, heads, offset, width);
        public Activations JoinHeads(Activations a, Activations b, int heads, bool sharedB) => Host.JoinHeads(a, b, heads, sharedB);
        public Activations Gate(Activations gate, Activations up, MlpActivation activation) => Host.Gate(gate, up, activation);
        public void Add(Activations target, Activations x) => Host.Add(target, x);
        public void Observe(ILinearInputObserver? observer, LinearGroup group, Activations x) => Host.Observe(observer, group, x);
        public Activations Zeros(int rows, int cols) => Host.Zeros(rows, cols);
        public ExpertAssignment Route(Activations logits, RouterSpec router, ReadOnlyMemory<float> correctionBias, bool everyToken) => Host.Route(logits, router, correctionBias, everyToken);
        public Activations Gather(Activations x, ExpertAssignment assignment, int expert) => Host.Gather(x, assignment, expert);
        public void ScatterAdd(Activations target, Activations y, ExpertAssignment assignment, int expert) => Host.ScatterAdd(target, y, assignment, expert);
        public IDisposable Temporaries() => Host.Temporaries();
    }
}
