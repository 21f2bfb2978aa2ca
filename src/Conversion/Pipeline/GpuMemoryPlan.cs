using Converter.Models;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// How a GPU run fits its memory (<see cref="ResourceCheck.Run"/> picks it from the estimate, before any work): where
/// the calibration states live, and whether the run is lean.
/// </summary>
/// <param name="StatesOnGpu">The states live on the GPU (<see cref="StatePlacement"/>).</param>
/// <param name="Lean">
/// For a GPU smaller than the job (a 70B on a 24 GB card, `--gpu-memory`): a module's Hessians all finalized before
/// its first linear, so their float64 sums (a 70B down_proj's is 6.6 GB) leave the device before any LDL factor is
/// made; the device's weight cache emptied before quantizing (the module's original weights are not multiplied by
/// again) and capped at the largest module's weights; the proxy error's traces in column stripes. Costs little: a
/// group's finalize no longer overlaps other linears.
/// </param>
/// <param name="OneInFlight">
/// Lean, and one linear quantized at a time: the least memory, and slower (a linear's host work no longer overlaps
/// another's search: a 70B layer's quantize took 40.8 s so on an H200).
/// </param>
/// <param name="OriginalOnGpu">
/// The drift target's original-model stream lives on the GPU too, beside the quantized one: both streams' passes then
/// stay on the device. On the host, each pass moved every chunk of it both ways (an 8B layer's sequential capture at
/// 250 × 2048 took 33 s so on an H200). Only in the fastest plan: it is the first thing a tight GPU gives back.
/// </param>
/// <param name="HostTargets">
/// Lean, and the W and regularized target of each module's widest-input linears (a llama block's down_proj) kept on
/// the host while they are quantized (their regularization runs there; <see cref="ModuleConverter.HoldsTargetOnDevice"/>):
/// their block LDL (12 k² bytes, 9.9 GB at a 70B's down_proj) sets the module's quantize peak, which the held pair
/// (8 bytes a weight) would raise. Slower for them (a 70B down_proj's host steps took 1.6–1.7 s of its 6.7–8 s).
/// </param>
/// <param name="StashOnGpu">
/// A sequential capture keeps both streams' stage stashes on the GPU beside their states (<see cref="Models.Forward.StageStash"/>):
/// tokens × the hidden width (and the attended width where it differs) per stream, 8.4 GB each for an 8B at 250 × 2048.
/// Only in the fastest plan, beside <paramref name="OriginalOnGpu"/>; otherwise the stages recompute from the block's
/// input (<see cref="KeepsStashes"/>).
/// </param>
public sealed record GpuMemoryPlan(bool StatesOnGpu, bool Lean, bool OneInFlight = false, bool OriginalOnGpu = false, bool StashOnGpu = false,
    bool HostTargets = false)
{
    /// <summary>States on the host, not lean: the plan of a run without a GPU.</summary>
    public static GpuMemoryPlan Host { get; } = new(false, false);

    /// <summary>
    /// Whether a sequential capture on a GPU keeps stage stashes: only on the GPU, in a plan that puts them there. Not on
    /// the host beside host states: copying them down and up again cost more than recomputing the block's first stages
    /// on the GPU (a 70B layer in 20 GB, 128 × 512, H100: capture 17.9 s with host stashes, 14.7 s without; session 28).
    /// </summary>
    public bool KeepsStashes => StashOnGpu;

    /// <summary>Bytes of float32 weights of the model's largest module: what a lean plan's weight cache holds at most.</summary>
    public static long WeightCacheBytes(TransformerModel model) =>
        model.Modules.Select(m => m.Linears.Sum(l => 4L * l.InFeatures * l.OutFeatures)).DefaultIfEmpty(0).Max();

    /// <summary>
    /// The plans a run may take, fastest first: the states on the GPU before lean (a pass over host states moves every
    /// chunk both ways), with the drift target's <paramref name="originalStream"/> first both streams on the GPU, and
    /// with a <paramref name="sequential"/> capture first their stage stashes too; a lean plan first with the linears'
    /// targets held on the GPU.
    /// <paramref name="leanAllowed"/> is false when --linears-in-flight was given: one in flight would override it.
    /// </summary>
    public static IEnumerable<GpuMemoryPlan> Candidates(StatePlacement placement, bool leanAllowed, bool originalStream = false, bool sequential = false)
    {
        var states = placement switch
        {
            StatePlacement.Host => [false],
            StatePlacement.Gpu => [true],
            _ => new[] { true, false },
        };
        foreach (bool onGpu in states)
        {
            if (onGpu && originalStream)
            {
                if (sequential)
                    yield return new GpuMemoryPlan(true, false, OriginalOnGpu: true, StashOnGpu: true);
                yield return new GpuMemoryPlan(true, false, OriginalOnGpu: true);
            }
            else if (onGpu && sequential)
                yield return new GpuMemoryPlan(true, false, StashOnGpu: true);
            yield return new GpuMemoryPlan(onGpu, false);
            yield return new GpuMemoryPlan(onGpu, true);
            yield return new GpuMemoryPlan(onGpu, true, HostTargets: true);
            if (leanAllowed)
            {
                yield return new GpuMemoryPlan(onGpu, true, OneInFlight: true);
                yield return new GpuMemoryPlan(onGpu, true, OneInFlight: true, HostTargets: true);
            }
        }
    }

    /// <summary>What the estimate of a run on this plan starts from.</summary>
    public ResourceInputs Inputs(ResourceInputs inputs) =>
        inputs with { StatesOnGpu = StatesOnGpu, OriginalOnGpu = OriginalOnGpu, StashOnGpu = StashOnGpu, Lean = Lean, HostTargets = HostTargets, LinearsInFlight = OneInFlight ? _ => 1 : inputs.LinearsInFlight, WholeStages = inputs.WholeStages && !OneInFlight };

    /// <summary>For the log line.</summary>
    public string Describe() => $"calibration states on the {(StatesOnGpu ? "GPU" : "host")}" + (OriginalOnGpu ? " (the original model's stream too)" : "") +
        (StashOnGpu ? ", stage stashes on the GPU" : "") +
        (Lean ? $", lean (Hessians finalized first, weight cache capped{(OneInFlight ? ", one linear in flight" : "")}{(HostTargets ? ", targets on the host" : "")})" : "");
}
