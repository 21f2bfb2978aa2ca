using Converter.Conversion;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Formats.HuggingFace;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Synthetic;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// The memory and disk estimate convert checks before any work (<see cref="ResourceEstimate"/>): exact where it is
/// arithmetic (the calibration state, the stored tensors), not refusing the jobs that run today, refusing with the
/// shortfall named those that cannot fit, and computed in 64 bits at a 70B's sizes.
/// </summary>
public class ResourceEstimateTests
{
    private const long GiB = 1L << 30;

    /// <summary>The H100 and H200 the GPU runs use: 132 multiprocessors.</summary>
    private static readonly GpuShape Hopper = new(132);

    internal static TransformerSpec Shape(string preset, int? layers = null)
    {
        var shape = SyntheticShape.Presets[preset];
        return TransformerSpec.From(ModelConfig.Parse((shape with { Layers = layers ?? shape.Layers }).ToConfigJson(), "config.json"));
    }

    /// <summary>Every budgeted linear at <paramref name="bits"/>, as a whole-number --bits allocates.</summary>
    internal static ResourceInputs Inputs(TransformerSpec spec, int rows, int cols, GpuShape? gpu, int bits = 4, int headBits = 6, long existingWork = 0)
    {
        var model = new TransformerModel(spec);
        var allocation = model.Layers.SelectMany(l => l.Linears).ToDictionary(l => l.Name, _ => bits);
        return new ResourceInputs(spec, rows, cols, allocation, headBits, SourceElementBytes: 2, LinearsInFlight: linears => InFlight.Linears(0, gpu is not null, linears),
            OtherFilesBytes: 9 << 20, ExistingWorkBytes: existingWork, gpu);
    }

    /// <summary>
    /// A sequential stage quantized whole (<see cref="InFlight.WholeStage"/>) is counted when its three linears' working
    /// sets are more than the module's two largest: a block whose MLP is narrow (intermediate 1024 beside a 4096-wide
    /// attention, and a small vocabulary so that a block is the peak), where q, k and v at once need more than any two linears; an 8B's q/k/v stage fits within its two
    /// largest and costs nothing more.
    /// </summary>
    [Test]
    public void AWholeStageIsCountedWhenItNeedsMoreThanTheModulesTwoLargest()
    {
        var shape = SyntheticShape.Presets["llama-3-8b"] with { Layers = 2, Intermediate = 1024, KvHeads = 32, Vocab = 2048 };
        var narrow = TransformerSpec.From(ModelConfig.Parse(shape.ToConfigJson(), "config.json"));
        var inputs = Inputs(narrow, 128, 512, Hopper) with { Sequential = true, OriginalStream = true, StatesOnGpu = true };
        long pairs = ResourceEstimate.For(inputs).GpuBytes;
        long whole = ResourceEstimate.For(inputs with { WholeStages = true }).GpuBytes;
        Assert.That(whole, Is.GreaterThan(pairs));

        var wide = Inputs(Shape("llama-3-8b", 2), 128, 512, Hopper) with { Sequential = true, OriginalStream = true, StatesOnGpu = true };
        Assert.That(ResourceEstimate.For(wide with { WholeStages = true }).GpuBytes, Is.EqualTo(ResourceEstimate.For(wide).GpuBytes));
        Assert.That(new GpuMemoryPlan(true, true, OneInFlight: true).Inputs(wide with { WholeStages = true }).WholeStages, Is.False, "one in flight is one in flight");
    }

    private static AvailableResources Machine(double hostGiB, double? gpuGiB, double diskGiB) =>
        new((long)(hostGiB * GiB), gpuGiB is { } g ? (long)(g * GiB) : null, (long)(diskGiB * GiB), (long)(diskGiB * GiB), SameDisk: true);

    /// <summary>
    /// One set of states (each step writes over its inputs), counted where it lives; auto puts it on the GPU when the
    /// whole GPU estimate with it stays within 85% of the free memory: an 8B at exllamav3's 250 × 2048 on an H200, not
    /// on a 24 GB card, where its 7.8 GiB of states stay on the host.
    /// </summary>
    [Test]
    public void TheStatesAreCountedOnceWhereTheyLive()
    {
        var inputs = Inputs(Shape("llama-3-8b", 4), 250, 2048, Hopper);
        var host = ResourceEstimate.For(inputs);
        var gpu = ResourceEstimate.For(inputs with { StatesOnGpu = true });
        long state = 250L * 2048 * 4096 * 4;
        Assert.That(host.HostBytes - gpu.HostBytes, Is.EqualTo(state));
        Assert.That(gpu.GpuBytes - host.GpuBytes, Is.EqualTo(state));
        Assert.That(gpu.Describe(Machine(120, 139, 200)), Does.Contain("calibration states 7.8 GiB on the GPU"));
        Assert.That(host.Describe(Machine(120, 139, 200)), Does.Contain("calibration states 7.8 GiB on the host"));

        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, inputs, 139 * GiB), Is.EqualTo(new GpuMemoryPlan(true, false)));
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, inputs, null), Is.EqualTo(new GpuMemoryPlan(false, false)), "free memory unknown: host states");
        Assert.That(ResourceCheck.Plan(StatePlacement.Host, inputs, 139 * GiB), Is.EqualTo(new GpuMemoryPlan(false, false)));
        Assert.That(ResourceCheck.Plan(StatePlacement.Gpu, inputs, 1 * GiB), Is.EqualTo(new GpuMemoryPlan(true, true)),
            "asked for, the GPU is used, lean as the smallest (the shortfall is then reported; the states set its peak, so the fastest lean plan)");
        var cpu = Inputs(Shape("llama-3-8b", 1), 128, 512, null);
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, cpu with { StatesOnGpu = true }, null), Is.EqualTo(GpuMemoryPlan.Host));
        Assert.That(ResourceEstimate.For(cpu with { StatesOnGpu = true }).HostBytes, Is.EqualTo(ResourceEstimate.For(cpu).HostBytes), "without a GPU the states are on the host");
        Assert.Throws<InvalidSettingsException>(() => ResourceCheck.Plan(StatePlacement.Gpu, cpu, null));

        // --gpu-memory: what the job plans on is the smaller of the budget and the free memory.
        Assert.That(ResourceCheck.GpuBytesToPlanOn(139 * GiB, null), Is.EqualTo(139 * GiB));
        Assert.That(ResourceCheck.GpuBytesToPlanOn(139 * GiB, 20 * GiB), Is.EqualTo(20 * GiB));
        Assert.That(ResourceCheck.GpuBytesToPlanOn(12 * GiB, 20 * GiB), Is.EqualTo(12 * GiB));
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, inputs, ResourceCheck.GpuBytesToPlanOn(139 * GiB, 40 * GiB)), Is.EqualTo(new GpuMemoryPlan(true, false)));
    }

    /// <summary>
    /// The drift target's original stream is a second set of states on the host (wherever the quantized stream's are)
    /// and a second state file in every checkpoint, plus its per-group cross sums and chunk copies at the peak module.
    /// </summary>
    [Test]
    public void TheDriftTargetsOriginalStreamIsCountedOnTheHostAndInTheCheckpoint()
    {
        var inputs = Inputs(Shape("llama-3-8b", 2), 250, 2048, Hopper) with { StatesOnGpu = true };
        var plain = ResourceEstimate.For(inputs);
        var drift = ResourceEstimate.For(inputs with { OriginalStream = true });
        long state = 250L * 2048 * 4096 * 4, ids = 4L * 250 * 2048;
        Assert.That(drift.HostBytes - plain.HostBytes, Is.GreaterThan(state), "the stream and the cross sums");
        // The cross sums, a chunk's two blocks and the correction's solve are on the GPU; the peak is the head's module,
        // whose one group is 4096 wide: its sum and product stripe, 16 rows of 2048 tokens twice with the scratch's
        // headroom, and the solve's 4096² float64 matrix and float32 result (it solves in the cross sum's own memory).
        // The head's target is made on the host (ModuleConverter.MakesTargetOnDevice): nothing for it here.
        long head = 8L * 4096 * 4096 + 4L * 4096 * 4096 + (long)(1.25 * 8 * 16 * 2048 * 4096) + 12L * 4096 * 4096;
        Assert.That(drift.GpuBytes - plain.GpuBytes, Is.EqualTo(head));
        // The fastest plan keeps the original stream on the GPU too, where both fit: it moves from the host's count to the GPU's.
        var both = ResourceEstimate.For(inputs with { OriginalStream = true, OriginalOnGpu = true });
        Assert.That(both.GpuBytes - drift.GpuBytes, Is.EqualTo(state));
        Assert.That(drift.HostBytes - both.HostBytes, Is.EqualTo(state));
        Assert.That(GpuMemoryPlan.Candidates(StatePlacement.Auto, leanAllowed: true, originalStream: true).First(), Is.EqualTo(new GpuMemoryPlan(true, false, OriginalOnGpu: true)));
        var driftInputs = inputs with { StatesOnGpu = false, OriginalStream = true };
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, driftInputs, 139 * GiB), Is.EqualTo(new GpuMemoryPlan(true, false, OriginalOnGpu: true)));
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, driftInputs, 30 * GiB), Is.EqualTo(new GpuMemoryPlan(true, false)),
            "a GPU that holds one set of states and not two keeps the original stream on the host");
        Assert.That(ResourceCheck.Plan(StatePlacement.Host, driftInputs, 139 * GiB).OriginalOnGpu, Is.False, "host states, host original stream");
        Assert.That(drift.WorkDiskBytes - plain.WorkDiskBytes, Is.EqualTo(2 * (state + ids + (1 << 16))), "two checkpoints during a rotation");
        // A sequential capture keeps a block's original weights beside their reconstructions: a mistral-7b layer's 0.87 GB
        // (on the CPU, where a layer, not the 32k-vocabulary head, is the host's peak); and it holds one stage's cross
        // sums at a time, where a capture of the whole block holds all four groups' (chunks of 4096 tokens). On the CPU
        // a group's sum costs 12 bytes per token and input (the packed rows), 12 per sum entry (float64 and its float
        // product) and 4 per token and input and column (the transposes); down_proj's is projected (14336 × 4096), its
        // products 8 bytes more per token and column; the correction's solve 8 per k² entry and 12 per sum entry.
        var cpu = Inputs(Shape("mistral-7b", 2), 128, 512, null) with { OriginalStream = true };
        Assert.That(ResourceEstimate.For(cpu).PeakModule, Does.StartWith("model.layers."));
        const long t = 4096, h = 4096, f = 14336;
        long square = 12 * t * h + 12 * h * h + 4 * t * 2 * h, projected = 12 * t * f + 8 * t * h + 12 * f * h + 4 * t * (f + h);
        long downSolve = 8 * f * f + 12 * f * h;
        long originals = 4L * (4096L * 4096 * 2 + 4096L * 1024 * 2 + 3L * 4096 * 14336);
        Assert.That(ResourceEstimate.For(cpu with { Sequential = true }).HostBytes - ResourceEstimate.For(cpu).HostBytes,
            Is.EqualTo(originals + (projected + downSolve) - (3 * square + projected + downSolve)));
    }

    /// <summary>
    /// Each plan a smaller GPU falls back to needs less GPU memory than the one before it (lean: one linear in flight,
    /// Gram sums freed before any factor, the weight cache emptied), and the plan taken is the first that fits 85% of
    /// what is free: an 8B at exllamav3's 250 × 2048 keeps its states on the GPU down to a 24 GB card by running lean.
    /// </summary>
    [Test]
    public void SmallerGpusTakeLeanerPlansInOrder()
    {
        var inputs = Inputs(Shape("llama-3-8b", 4), 250, 2048, Hopper);
        var candidates = GpuMemoryPlan.Candidates(StatePlacement.Auto, leanAllowed: true).ToList();
        var lean = new[]
        {
            new GpuMemoryPlan(true, true), new GpuMemoryPlan(true, true, HostTargets: true),
            new GpuMemoryPlan(true, true, OneInFlight: true), new GpuMemoryPlan(true, true, OneInFlight: true, HostTargets: true),
        };
        Assert.That(candidates, Is.EqualTo(new[] { new GpuMemoryPlan(true, false) }.Concat(lean)
            .Concat([new GpuMemoryPlan(false, false)]).Concat(lean.Select(p => p with { StatesOnGpu = false }))));
        var bytes = candidates.Select(p => ResourceEstimate.For(p.Inputs(inputs)).GpuBytes).ToList();
        TestContext.Out.WriteLine(string.Join(", ", bytes.Select(HumanFormat.Bytes)));
        foreach (int first in new[] { 0, 5 })
        {
            Assert.That(bytes[first + 1], Is.LessThan(bytes[first]), "lean");
            Assert.That(bytes[first + 2], Is.LessThanOrEqualTo(bytes[first + 1]), "targets on the host");
            Assert.That(bytes[first + 3], Is.LessThanOrEqualTo(bytes[first + 1]), "one in flight");
            Assert.That(bytes[first + 4], Is.LessThanOrEqualTo(Math.Min(bytes[first + 2], bytes[first + 3])), "both");
        }
        foreach (var (plan, need) in candidates.Zip(bytes))
        {
            long free = (long)(need / ResourceCheck.GpuPlanShare) + 1;
            var taken = ResourceCheck.Plan(StatePlacement.Auto, inputs, free);
            Assert.That(ResourceEstimate.For(taken.Inputs(inputs)).GpuBytes, Is.LessThanOrEqualTo(ResourceCheck.GpuPlanShare * free));
            Assert.That(candidates.IndexOf(taken), Is.LessThanOrEqualTo(candidates.IndexOf(plan)), $"{plan} fits {HumanFormat.Bytes(free)}: nothing slower is taken");
        }
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, inputs, 23 * GiB), Is.EqualTo(new GpuMemoryPlan(true, true)));
        Assert.That(GpuMemoryPlan.Candidates(StatePlacement.Auto, leanAllowed: false), Has.None.Matches<GpuMemoryPlan>(p => p.OneInFlight), "--linears-in-flight given: kept");
    }

    /// <summary>
    /// Issue 14's target: a 70B-shaped layer and head within 20 GB of GPU memory (the estimate is what the plan is
    /// chosen by; docs/benchmarks.md has the measured peak). Lean, with its 2 GiB of states on the host, it fits.
    /// </summary>
    [Test]
    public void ASeventyBFitsTwentyGigabytesLean()
    {
        var inputs = Inputs(Shape("llama-3-70b", 1), 128, 512, Hopper);
        long twenty = 20_000_000_000;
        var plan = ResourceCheck.Plan(StatePlacement.Auto, inputs, twenty);
        var needs = ResourceEstimate.For(plan.Inputs(inputs));
        TestContext.Out.WriteLine($"{plan}: {HumanFormat.Bytes(needs.GpuBytes)}; normal {HumanFormat.Bytes(ResourceEstimate.For(inputs).GpuBytes)}");
        Assert.That(plan, Is.EqualTo(new GpuMemoryPlan(false, true, HostTargets: true)), "holding the down_proj's target would raise its block LDL's peak past the share");
        Assert.That(needs.GpuBytes, Is.LessThanOrEqualTo(ResourceCheck.GpuPlanShare * twenty));
    }

    /// <summary>
    /// Where no plan fits the share, the fastest of those with the smallest estimate: the 70B's default quantizer in 20 GB
    /// (its `--gpu-memory 18.626`) peaks in down_proj's capture stage whether one linear is in flight or two, so it
    /// keeps two (one in flight quantized its gate and up one after the other, ~1 s more a layer on an H100), and holds
    /// every target on the GPU but down_proj's.
    /// </summary>
    [Test]
    public void WhereNothingFitsTheFastestOfTheSmallestIsTaken()
    {
        var inputs = Inputs(Shape("llama-3-70b", 1), 128, 512, Hopper) with { OriginalStream = true, Sequential = true };
        long budget = (long)(18.626 * GiB);
        var candidates = GpuMemoryPlan.Candidates(StatePlacement.Auto, leanAllowed: true, originalStream: true, sequential: true).ToList();
        var bytes = candidates.Select(p => ResourceEstimate.For(p.Inputs(inputs)).GpuBytes).ToList();
        Assert.That(bytes.Min(), Is.GreaterThan(ResourceCheck.GpuPlanShare * budget), "nothing fits the share");
        var plan = ResourceCheck.Plan(StatePlacement.Auto, inputs, budget);
        Assert.That(plan, Is.EqualTo(new GpuMemoryPlan(false, true, HostTargets: true)));
        Assert.That(ResourceEstimate.For(plan.Inputs(inputs)).GpuBytes, Is.EqualTo(bytes.Min()));
        Assert.That(ResourceEstimate.For(new GpuMemoryPlan(false, true, OneInFlight: true, HostTargets: true).Inputs(inputs)).GpuBytes, Is.EqualTo(bytes.Min()),
            "one in flight would save nothing");
        Assert.That(ResourceEstimate.For(new GpuMemoryPlan(false, true).Inputs(inputs)).GpuBytes, Is.GreaterThan(bytes.Min()), "held targets cost the peak here");

        // The plan's host targets are the block's widest-input linears only: down_proj, whose block LDL sets the peak.
        var block = new TransformerModel(Shape("llama-3-70b", 1)).Layers[0];
        int widest = block.Linears.Max(l => l.InFeatures);
        var onHost = block.Linears.Where(l => !ModuleConverter.HoldsTargetOnDevice(l, widest, hostTargets: true)).Select(l => l.Name).ToList();
        Assert.That(onHost, Is.EqualTo(new[] { "model.layers.0.mlp.down_proj" }));
        Assert.That(block.Linears.All(l => ModuleConverter.HoldsTargetOnDevice(l, widest, hostTargets: false)), Is.True);
    }

    /// <summary>
    /// A sequential capture's stage stashes are one more set of states per stream (each row's residual; llama's attended
    /// values are as wide and share its memory): on the GPU in the fastest plan, where both fit beside both streams,
    /// on the host on the CPU, and nowhere when turned off or without a sequential capture.
    /// </summary>
    [Test]
    public void StageStashesAreASetOfStatesPerStream()
    {
        long state = 250L * 2048 * 4096 * 4;
        var inputs = Inputs(Shape("llama-3-8b", 2), 250, 2048, Hopper) with { StatesOnGpu = true, OriginalStream = true, OriginalOnGpu = true, Sequential = true };
        var recomputed = ResourceEstimate.For(inputs);
        Assert.That(ResourceEstimate.For(inputs with { StageStash = true }).GpuBytes, Is.EqualTo(recomputed.GpuBytes), "allowed, but not in this plan");
        var stashed = ResourceEstimate.For(inputs with { StageStash = true, StashOnGpu = true });
        Assert.That(stashed.GpuBytes - recomputed.GpuBytes, Is.EqualTo(2 * state), "both streams' stashes");
        Assert.That(stashed.HostBytes, Is.EqualTo(recomputed.HostBytes));

        var planInputs = inputs with { StatesOnGpu = false, OriginalOnGpu = false, StageStash = true };
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, planInputs, 139 * GiB), Is.EqualTo(new GpuMemoryPlan(true, false, OriginalOnGpu: true, StashOnGpu: true)));
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, planInputs with { StageStash = false }, 139 * GiB).StashOnGpu, Is.False, "--stage-stash false");
        Assert.That(ResourceCheck.Plan(StatePlacement.Auto, planInputs with { Sequential = false }, 139 * GiB).StashOnGpu, Is.False, "no stages to stash");
        // A GPU with room for one stash and not two.
        var tight = ResourceCheck.Plan(StatePlacement.Auto, planInputs, (long)((recomputed.GpuBytes + state) / ResourceCheck.GpuPlanShare));
        Assert.That(tight, Is.EqualTo(new GpuMemoryPlan(true, false, OriginalOnGpu: true)), "the stashes are the first thing a tight GPU gives back");

        // A GPU plan keeps the stashes on the GPU or nowhere: not on the host beside host states (slower than recomputing).
        var hostStates = inputs with { StatesOnGpu = false, OriginalOnGpu = false };
        var hostStashed = ResourceEstimate.For(hostStates with { StageStash = true });
        Assert.That(hostStashed.HostBytes, Is.EqualTo(ResourceEstimate.For(hostStates).HostBytes));
        Assert.That(hostStashed.GpuBytes, Is.EqualTo(ResourceEstimate.For(hostStates).GpuBytes));
        Assert.That(new GpuMemoryPlan(false, true).KeepsStashes, Is.False);
        Assert.That(new GpuMemoryPlan(true, true).KeepsStashes, Is.False);
        Assert.That(new GpuMemoryPlan(true, false, StashOnGpu: true).KeepsStashes, Is.True);
        Assert.That(ResourceEstimate.For(inputs with { StageStash = true }).HostBytes, Is.EqualTo(recomputed.HostBytes), "states on the GPU: not on the host");

        // On the CPU, on the host: both streams' residuals; a host too small for them says what turning them off saves.
        var cpu = Inputs(Shape("llama-3-8b", 2), 128, 512, null) with { OriginalStream = true, Sequential = true };
        var cpuStashed = ResourceEstimate.For(cpu with { StageStash = true });
        Assert.That(cpuStashed.HostBytes - ResourceEstimate.For(cpu).HostBytes, Is.EqualTo(2 * 128L * 512 * 4096 * 4));
        var small = Machine(cpuStashed.HostBytes / (double)GiB - 0.1, null, 200);
        Assert.That(cpuStashed.Shortfalls(small).Single(), Does.EndWith("; --stage-stash false needs 2.0 GiB less"));
        Assert.That(ResourceEstimate.For(cpu).Shortfalls(small), Is.Empty);
    }

    /// <summary>
    /// Issue 14's 70B in 20 GB with the default quantizer: its drift target's stages counted one at a time, down_proj's
    /// cross sum projected by its weight (28672 × 8192 instead of 28672²) and its solve after the capture's sums are
    /// spent, a 70B layer keeps the drift target lean within 20 GiB (it needed 34 GiB counted all at once, square).
    /// On a GPU that holds exllamav3's quantizer's plan and not the drift target's, the default gives way to
    /// exllamav3's quantizer; asked for, the drift target stays and the shortfall stands. An 8B on an H200 keeps it.
    /// </summary>
    [Test]
    public void TheDefaultDriftTargetGivesWayWhereItDoesNotFit()
    {
        var inputs = Inputs(Shape("llama-3-70b", 1), 128, 512, Hopper) with { OriginalStream = true, Sequential = true };
        var twenty = Machine(120, 20, 200);
        var (plan, needs, withDrift) = ResourceCheck.Choose(inputs, twenty, StatePlacement.Auto, leanAllowed: true, mayDropDrift: true);
        TestContext.Out.WriteLine($"20 GiB: {HumanFormat.Bytes(needs.GpuBytes)} with the drift target ({plan.Describe()})");
        Assert.That(withDrift, Is.Null, "the drift target fits 20 GiB");
        Assert.That(plan.Lean, Is.True);
        // A stage quantizes only its own linears: the down_proj stage's one does not share the GPU with gate_proj's.
        Assert.That(plan.OneInFlight, Is.False, "two linears in flight where a stage has two");
        Assert.That(needs.Shortfalls(twenty), Is.Empty);

        var tight = Machine(120, 16, 200);
        (plan, needs, withDrift) = ResourceCheck.Choose(inputs, tight, StatePlacement.Auto, leanAllowed: true, mayDropDrift: true);
        TestContext.Out.WriteLine($"16 GiB: with the drift target {HumanFormat.Bytes(withDrift?.GpuBytes ?? 0)}, without {HumanFormat.Bytes(needs.GpuBytes)} ({plan.Describe()})");
        Assert.That(withDrift, Is.Not.Null);
        Assert.That(withDrift!.Shortfalls(tight), Has.Some.StartsWith("GPU memory: "));
        Assert.That(needs.Shortfalls(tight), Is.Empty);
        Assert.That(needs.GpuBytes, Is.LessThan(withDrift.GpuBytes));
        Assert.That(plan.OriginalOnGpu, Is.False);

        var (_, insisted, none) = ResourceCheck.Choose(inputs, tight, StatePlacement.Auto, leanAllowed: true, mayDropDrift: false);
        Assert.That(none, Is.Null);
        Assert.That(insisted.Shortfalls(tight), Has.Some.StartsWith("GPU memory: "));

        var eight = Inputs(Shape("llama-3-8b", 2), 250, 2048, Hopper) with { OriginalStream = true, Sequential = true };
        var (eightPlan, _, kept) = ResourceCheck.Choose(eight, Machine(120, 139, 200), StatePlacement.Auto, leanAllowed: true, mayDropDrift: true);
        Assert.That(kept, Is.Null, "an 8B on an H200 keeps the drift target");
        Assert.That(eightPlan.OriginalOnGpu, Is.True);
    }

    /// <summary>
    /// With --device cuda:0,cuda:1,… every GPU after the first is checked for what its share of the linears needs (no
    /// states, Gram sums or forward scratch: less than the first's), and a shortfall names the device.
    /// </summary>
    [Test]
    public void TheGpusAfterTheFirstAreCheckedForTheirShareOfTheLinears()
    {
        var needs = ResourceEstimate.For(Inputs(Shape("llama-3-8b", 1), 128, 512, Hopper));
        TestContext.Out.WriteLine($"first {HumanFormat.Bytes(needs.GpuBytes)}, others {HumanFormat.Bytes(needs.OtherGpuBytes)}");
        Assert.That(needs.OtherGpuBytes, Is.GreaterThan(1 * GiB).And.LessThan(needs.GpuBytes));
        var two = Machine(120, 139, 200) with { OtherGpus = [("cuda:1", 139 * GiB)] };
        Assert.That(needs.Shortfalls(two), Is.Empty);
        Assert.That(needs.Describe(two), Does.Contain($", cuda:1 {HumanFormat.Bytes(needs.OtherGpuBytes)} of 139.0 GiB free"));
        var small = two with { OtherGpus = [("cuda:1", 139 * GiB), ("cuda:2", 1 * GiB)] };
        Assert.That(needs.Shortfalls(small), Is.EqualTo(new[]
        {
            $"GPU memory on cuda:2: its share of the linears needs about {HumanFormat.Bytes(needs.OtherGpuBytes)}, 1.0 GiB free",
        }));
        Assert.That(ResourceEstimate.For(Inputs(Shape("llama-3-8b", 1), 128, 512, null)).OtherGpuBytes, Is.Zero, "no GPU");
    }

    [Test]
    public void TheIssuesStatesAreCountedIn64Bits()
    {
        // The report: a 4-layer llama-3-8b at 250 × 2048 tokens; and a 70B at the defaults, exactly 2^31 bytes.
        Assert.That(ResourceEstimate.For(Inputs(Shape("llama-3-8b", 4), 250, 2048, Hopper)).StateBytes, Is.EqualTo(250L * 2048 * 4096 * 4));
        Assert.That(ResourceEstimate.For(Inputs(Shape("llama-3-70b", 1), 128, 512, Hopper)).StateBytes, Is.EqualTo(1L << 31));
        Assert.That(HiddenStates.Bytes(250, 2048, 8192), Is.EqualTo(16_777_216_000L));
    }

    /// <summary>
    /// The GPU forward's attention scores (rows·heads·tokens² floats per chunk) are counted only below the fused
    /// attention's row length: one token shorter than the threshold adds a llama-3-8b chunk's 8 × 32 × 511² floats
    /// (with the scratch headroom); at the threshold the fused kernel needs none.
    /// </summary>
    [Test]
    public void AttentionScoresAreCountedOnlyWhereTheBatchedProductsRun()
    {
        int threshold = Converter.Cuda.Models.CudaForwardBackend.FusedAttentionTokens;
        long fused = ResourceEstimate.For(Inputs(Shape("llama-3-8b", 1), 64, threshold, Hopper)).GpuBytes;
        long products = ResourceEstimate.For(Inputs(Shape("llama-3-8b", 1), 64, threshold - 1, Hopper)).GpuBytes;
        double scores = 4.0 * CalibrationState.ChunkRows(threshold - 1) * 32 * (threshold - 1) * (threshold - 1);
        Assert.That(products - fused, Is.InRange(scores, 1.5 * scores));
    }

    [Test]
    public void JobsThatRunTodayAreNotRefused()
    {
        var jobs = new (string Name, ResourceInputs Inputs, AvailableResources Machine)[]
        {
            // The README's `./trellis convert` on a laptop-sized machine; the 8B benchmark and the 2 GiB proofs on the
            // GPU host (128 GiB, an H200's 139 GiB, 64 GiB of disk for the 4-layer and 1-layer jobs).
            ("tiny-llama", Inputs(TransformerSpec.From(ModelConfig.Load(RepoPaths.SampleModel)), 128, 512, null), Machine(4, null, 2)),
            ("llama-3-8b", Inputs(Shape("llama-3-8b"), 128, 512, Hopper), Machine(120, 139, 200)),
            ("llama-3-8b ×4 at 250×2048", Inputs(Shape("llama-3-8b", 4), 250, 2048, Hopper), Machine(120, 139, 50)),
            ("llama-3-70b ×1", Inputs(Shape("llama-3-70b", 1), 128, 512, Hopper), Machine(120, 139, 50)),
        };
        foreach (var (name, inputs, machine) in jobs)
        {
            var needs = ResourceEstimate.For(inputs);
            TestContext.Out.WriteLine($"{name}: {needs.Describe(machine)}");
            Assert.That(needs.Shortfalls(machine), Is.Empty, name);
        }
    }

    [Test]
    public void AJobThatCannotFitIsRefusedNamingTheShortfall()
    {
        // A 70B layer on the CPU: the down_proj group's float64 Hessian sums alone are 13 GB.
        var needs = ResourceEstimate.For(Inputs(Shape("llama-3-70b", 1), 128, 512, null));
        var shortfalls = needs.Shortfalls(Machine(24, null, 100));
        Assert.That(shortfalls, Has.Count.EqualTo(1));
        Assert.That(shortfalls[0], Does.StartWith("host memory: needs about").And.Contain("peak at model.layers.0").And.Contain("24.0 GiB available"));
        Assert.That(needs.GpuBytes, Is.Zero, "nothing on a GPU");

        var disk = needs.Shortfalls(Machine(100, null, 1));
        Assert.That(disk, Has.One.StartsWith("disk: work directory and output need about"));
        var apart = needs.Shortfalls(new AvailableResources(100 * GiB, null, 1 * GiB, 100 * GiB, SameDisk: false));
        Assert.That(apart, Is.EqualTo(new[] { $"disk: the work directory needs about {Conversion.Reporting.HumanFormat.Bytes(needs.WorkDiskBytes)} (checkpoints of 2.0 GiB), 1.0 GiB free" }));

        var gpu = ResourceEstimate.For(Inputs(Shape("llama-3-70b", 1), 128, 512, Hopper));
        Assert.That(gpu.Shortfalls(Machine(120, 24, 100)), Has.One.StartsWith("GPU memory: needs about"));
    }

    [Test]
    public void AnArrayPastWhatDotNetHoldsIsNamed()
    {
        // One row of 32768 tokens through a 128256-wide head on the CPU: 4.2G logits in one array of the comparison
        // (a GPU sums them where it makes them).
        var needs = ResourceEstimate.For(Inputs(Shape("llama-3-8b", 1), 16, 32768, null));
        Assert.That(needs.LargestArrayLength, Is.EqualTo(32768L * 128256));
        Assert.That(needs.Shortfalls(Machine(1000, 1000, 1000)), Is.EqualTo(new[] { $"a comparison's logits needs one array of {32768L * 128256} values, more than .NET arrays hold ({Array.MaxLength})" }));
        // 4096 tokens fit since the head's reference logits are compared a few rows at a time (all 5 rows at once were
        // 2.6G values); the embedding (vocabulary × hidden) is then as large; a 70B's embedding and padded head weight
        // (1.05G values each) are its largest arrays.
        var long8b = ResourceEstimate.For(Inputs(Shape("llama-3-8b", 1), 128, 4096, Hopper));
        Assert.That(long8b.LargestArrayLength, Is.EqualTo(4096L * 128256));
        Assert.That(long8b.Shortfalls(Machine(1000, 1000, 1000)), Is.Empty);
        var seventy = ResourceEstimate.For(Inputs(Shape("llama-3-70b", 1), 250, 2048, Hopper));
        Assert.That((seventy.LargestArray, seventy.LargestArrayLength), Is.EqualTo(("the embedding", 8192L * 128256)), "the first of the equal largest: the embedding, then the padded head");
        Assert.That(seventy.LargestArrayLength, Is.LessThanOrEqualTo(Array.MaxLength));
    }

    /// <summary>A module's file is written behind the next module: what the write holds on the host meanwhile.</summary>
    [Test]
    public void TheArraysAModulesWriteHoldsAreCounted()
    {
        var spec = Shape("llama-3-8b", 1);
        var inputs = Inputs(spec, 128, 512, null, bits: 3, headBits: 16);
        var model = new TransformerModel(spec);
        // The trellis as stored, suh and svh as float32 arrays (stored fp16); no marker array.
        long q = 4096L * 4096 * 3 / 8 + 4 * (4096 + 4096), kv = 4096L * 1024 * 3 / 8 + 4 * (4096 + 1024);
        long mlp = 4096L * 14336 * 3 / 8 + 4 * (4096 + 14336);
        Assert.That(ResourceEstimate.WriteHeldBytes(inputs, model.Layers[0]), Is.EqualTo(2 * q + 2 * kv + 3 * mlp), "a bf16 source's norms are copied from its mapping");
        Assert.That(ResourceEstimate.WriteHeldBytes(inputs, model.Head), Is.EqualTo(4L * 4096 * 128256), "a 16-bit head's float32 weight");
        Assert.That(ResourceEstimate.WriteHeldBytes(inputs, model.Embedding), Is.Zero);
        var f32 = inputs with { SourceElementBytes = 4 };
        Assert.That(ResourceEstimate.WriteHeldBytes(f32, model.Embedding), Is.EqualTo(4L * 128256 * 4096), "a float32 table is read whole");
        Assert.That(ResourceEstimate.WriteHeldBytes(f32, model.Layers[0]) - ResourceEstimate.WriteHeldBytes(inputs, model.Layers[0]), Is.EqualTo(2 * 4096 * 4));
        // Layer 0 converts while the float32 embedding is written.
        var (bf16Need, f32Need) = (ResourceEstimate.For(inputs), ResourceEstimate.For(f32));
        Assert.That((bf16Need.PeakModule, f32Need.PeakModule), Is.EqualTo(("model.layers.0", "model.layers.0")));
        Assert.That(f32Need.HostBytes - bf16Need.HostBytes, Is.EqualTo(4L * 128256 * 4096));
    }

    [Test]
    public void StoredTensorsFollowTheExl3Layout()
    {
        var spec = Shape("llama-3-8b", 1);
        var inputs = Inputs(spec, 128, 512, null, bits: 3, headBits: 16);
        var model = new TransformerModel(spec);
        const long header = 1 << 16;
        // q_proj (in 4096, out 4096) at K = 3: 4096·4096·3/8 bytes of trellis, fp16 suh and svh, a 4-byte marker.
        long q = 4096L * 4096 * 3 / 8 + 2 * (4096 + 4096) + 4, kv = 4096L * 1024 * 3 / 8 + 2 * (4096 + 1024) + 4;
        long mlp = 4096L * 14336 * 3 / 8 + 2 * (4096 + 14336) + 4;
        Assert.That(ResourceEstimate.ModuleFileBytes(inputs, model.Layers[0]), Is.EqualTo(header + 2 * q + 2 * kv + 3 * mlp + 2 * 4096 * 2));
        Assert.That(ResourceEstimate.ModuleFileBytes(inputs, model.Head), Is.EqualTo(header + 2L * 4096 * 128256), "a 16-bit head is stored fp16");
        Assert.That(ResourceEstimate.ModuleFileBytes(inputs, model.Embedding), Is.EqualTo(header + 2L * 128256 * 4096));
    }

    [Test]
    public void LatentAttentionsUnquantizedProjectionAndTheRouterAreCountedWhole()
    {
        // rand-deepseek-v3's sparse layer: besides its EXL3 linears (priced as above) it stores kv_b_proj (512 × 128),
        // kv_a_layernorm (128), the router (4 × 256), its correction bias and two block norms (counted hidden-wide).
        var spec = TransformerSpec.From(ModelConfig.Load(RepoPaths.RequireSharedModel("rand-deepseek-v3")));
        var inputs = Inputs(spec, 128, 512, null, bits: 3);
        var layer = new TransformerModel(spec).Layers[1];
        long linears = layer.Linears.Sum(l =>
        {
            long k = (l.InFeatures + 127) / 128 * 128, n = (l.OutFeatures + 127) / 128 * 128;
            return k * n * 3 / 8 + 2 * (k + n) + 4;
        });
        Assert.That(ResourceEstimate.ModuleFileBytes(inputs, layer) - (1 << 16) - linears, Is.EqualTo(2L * (512 * 128 + 128 + 4 * 256 + 3 * 256)));
    }

    [Test]
    public void AResumedJobNeedsOnlyWhatItsWorkDirectoryLacks()
    {
        var spec = Shape("llama-3-8b", 4);
        var fresh = ResourceEstimate.For(Inputs(spec, 250, 2048, Hopper));
        var resumed = ResourceEstimate.For(Inputs(spec, 250, 2048, Hopper, existingWork: 9 * GiB));
        Assert.That(fresh.WorkDiskBytes - resumed.WorkDiskBytes, Is.EqualTo(9 * GiB));
        Assert.That(ResourceEstimate.For(Inputs(spec, 250, 2048, Hopper, existingWork: 1000 * GiB)).WorkDiskBytes, Is.Zero);
    }
}
