using Converter.Compute;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Models.Rotary;

namespace Converter.Models.Tests.Models;

/// <summary>
/// <see cref="DecoderBlock.Capture"/>: a forward whose output nobody wants stops once the watched groups have seen
/// their inputs (a sequential capture's early sublayers; the MLP's input groups need no MLP, down_proj's not its own
/// product), and shows them exactly
/// what the whole forward shows. With a <see cref="StageStash"/> each stage starts where the one before it stopped.
/// </summary>
public sealed class PartialCaptureTests
{
    [TestCase(LinearSite.AttentionInput, new string[0])]
    [TestCase(LinearSite.AttentionOutput, new[] { "q_proj", "k_proj", "v_proj", "o_proj" })]
    [TestCase(LinearSite.MlpInput, new[] { "q_proj", "k_proj", "v_proj", "o_proj" })]
    [TestCase(LinearSite.MlpOutput, new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj" })]
    public void ACaptureRunsOnlyAsFarAsItsGroupsAndShowsThemTheForwardsInputs(LinearSite site, string[] expectedLinears)
    {
        using var h = new ModelHarness();
        var counter = new CountingPass();
        var block = Layer1(h, counter);
        var batch = TwoRows(h, 12, seed: 4);
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

    [Test]
    public void StagesStartFromTheStashAndShowAndComputeWhatTheWholeForwardDoes()
    {
        using var h = new ModelHarness();
        var counter = new CountingPass();
        var block = Layer1(h, counter);
        const int tokens = 12;
        var batch = TwoRows(h, tokens, seed: 6);
        // Calibration rows 3 and 1 of 4, in that order: the stash is indexed by row, not by position in the batch.
        int[] rows = [3, 1];
        using var stash = new StageStash(4, width => new HiddenStates(4, tokens, width));

        var expected = block.Forward(batch).RequireValues("whole");
        var stages = new List<(LinearSite Site, string[] Linears)>
        {
            (LinearSite.AttentionOutput, ["q_proj", "k_proj", "v_proj", "o_proj"]),
            (LinearSite.MlpInput, ["o_proj"]),
            (LinearSite.MlpOutput, ["gate_proj", "up_proj"]),
        };
        foreach (var (site, linears) in stages)
        {
            var watched = block.LinearGroups.Single(g => g.Site == site);
            var whole = new Recorder(watched);
            block.Forward(batch, whole);
            counter.Linears.Clear();
            var staged = new Recorder(watched);
            block.Capture(batch, staged, new StashRun(stash, watched.Sublayer).For(rows));
            Assert.That(counter.Linears.Select(n => n.Split('.')[^1]), Is.EquivalentTo(linears), $"{site}: linears the stage multiplied by");
            Assert.That(staged.Inputs.Single(), Is.EqualTo(whole.Inputs[0]), $"{site}: the watched group's input, to the bit");
        }
        Assert.That(stash.Holds(StashPoint.Residual, rows), Is.True);
        Assert.That(stash.Holds(StashPoint.Residual, [0]), Is.False, "a row no forward ran");

        counter.Linears.Clear();
        var final = block.Forward(batch, null, new StashRun(stash, StashRun.Final).For(rows)).RequireValues("final");
        Assert.That(counter.Linears.Select(n => n.Split('.')[^1]), Is.EquivalentTo(new[] { "gate_proj", "up_proj", "down_proj" }));
        Assert.That(final.Data, Is.EqualTo(expected.Data), "the output from the stashed residual, to the bit");

        var attentionInput = new Recorder(block.LinearGroups.Single(g => g.Site == LinearSite.AttentionInput));
        Assert.Throws<InvalidOperationException>(() => block.Forward(batch, attentionInput, new StashRun(stash, StashRun.Final).For(rows)),
            "a forward from the stash cannot show q/k/v their input");
    }

    [Test]
    public void AStageKeepsOnlyWhatIsFinalAtIt()
    {
        using var h = new ModelHarness();
        var block = Layer1(h, HostForwardPass.Instance);
        const int tokens = 8;
        var batch = SequenceBatch.FromTokens([h.RandomIds(tokens, 3)]).WithValues(new Matrix(tokens, h.Model.Spec.HiddenSize, Enumerable.Repeat(0.25f, tokens * h.Model.Spec.HiddenSize).ToArray()));
        using var stash = new StageStash(1, width => new HiddenStates(1, tokens, width));

        // q/k/v's stage computes everything (its reference rows' outputs) with q/k/v still to be quantized: nothing is final.
        block.Forward(batch, null, new StashRun(stash, LinearGroup.SublayerOf(LinearSite.AttentionInput)).For([0]));
        Assert.That(stash.Holds(StashPoint.Attended, [0]) || stash.Holds(StashPoint.Residual, [0]), Is.False);
        // o_proj's stage: the attended values are final, the residual (o_proj still original) is not.
        block.Forward(batch, null, new StashRun(stash, LinearGroup.SublayerOf(LinearSite.AttentionOutput)).For([0]));
        Assert.That(stash.Holds(StashPoint.Attended, [0]), Is.True);
        block.Forward(batch, null, new StashRun(stash, LinearGroup.SublayerOf(LinearSite.MlpInput)).For([0]));
        Assert.That(stash.Holds(StashPoint.Residual, [0]), Is.True);
    }

    /// <summary>The harness model's layer 1, loaded, running on <paramref name="backend"/>.</summary>
    private static DecoderBlock Layer1(ModelHarness h, IForwardBackend backend)
    {
        var spec = h.Model.Spec;
        var rotary = spec.LayerAttention[1].Rope is { } rope ? new RotaryEmbedding(rope, spec.RotaryDims) : null;
        var block = new DecoderBlock(1, spec, rotary, backend: backend);
        block.Load(h.Checkpoint);
        return block;
    }

    /// <summary>Two rows of <paramref name="tokens"/> random ids with random hidden states.</summary>
    private static SequenceBatch TwoRows(ModelHarness h, int tokens, int seed)
    {
        var rng = new Random(seed);
        int width = h.Model.Spec.HiddenSize;
        var x = new Matrix(2 * tokens, width, Enumerable.Range(0, 2 * tokens * width).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
        return SequenceBatch.FromTokens([h.RandomIds(tokens, 1), h.RandomIds(tokens, 2)]).WithValues(x);
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
        public void Scale(Activations x, float factor) => Host.Scale(x, factor);
        public void SoftCap(Activations x, float cap) => Host.SoftCap(x, cap);
        public TokenDiff[] Compare(Activations a, Activations b) => Host.Compare(a, b);
        public void Observe(ILinearInputObserver? observer, LinearGroup group, Activations x) => Host.Observe(observer, group, x);
        public Activations Zeros(int rows, int cols) => Host.Zeros(rows, cols);
        public ExpertAssignment Route(Activations logits, RouterSpec router, ReadOnlyMemory<float> correctionBias, bool everyToken) => Host.Route(logits, router, correctionBias, everyToken);
        public Activations Gather(Activations x, ExpertAssignment assignment, int expert) => Host.Gather(x, assignment, expert);
        public void ScatterAdd(Activations target, Activations y, ExpertAssignment assignment, int expert) => Host.ScatterAdd(target, y, assignment, expert);
        public Activations Load(ResidentStates states, IReadOnlyList<int> rows) => Host.Load(states, rows);
        public void Store(Activations x, ResidentStates states, IReadOnlyList<int> rows) => Host.Store(x, states, rows);
        public IDisposable Temporaries() => Host.Temporaries();
    }
}
