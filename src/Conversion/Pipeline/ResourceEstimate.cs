using Converter.Conversion.Reporting;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Regularize.Quantization;

namespace Converter.Conversion.Pipeline;

/// <summary>The GPU a conversion runs on, as far as the estimate needs it.</summary>
public sealed record GpuShape(int Multiprocessors);

/// <summary>What the estimate starts from: the model's shape, the settings that size the work, and where it runs.</summary>
/// <param name="Bits">K of every budgeted linear (the bit allocation); the head takes <paramref name="HeadBits"/>.</param>
/// <param name="SourceElementBytes">Bytes per element of the source's embedding and norms (2 for bf16/fp16, 4 for fp32).</param>
/// <param name="OtherFilesBytes">The source's non-weight files (tokenizer, …), copied into the output.</param>
/// <param name="ExistingWorkBytes">What the work directory holds now: a resumed job's checkpoint and module files, or a stale one a fresh run deletes first.</param>
/// <param name="LinearsInFlight">Linears quantized at once in a module of N linears (<see cref="InFlight.Linears"/>).</param>
/// <param name="Gpu">The GPU, or null when everything runs on the host.</param>
/// <param name="StatesOnGpu">The calibration states live on the GPU (<see cref="StatePlacement"/>) instead of in host memory.</param>
/// <param name="Lean">The run is lean (<see cref="GpuMemoryPlan.Lean"/>): Hessians finalized first, the weight cache emptied before quantizing.</param>
/// <param name="HostTargets">A lean run keeps each module's widest-input linears' targets on the host (<see cref="GpuMemoryPlan.HostTargets"/>).</param>
/// <param name="OriginalStream">The drift target keeps the original model's stream beside the quantized one (<see cref="QuantizerTuning.DriftTarget"/>).</param>
/// <param name="OriginalOnGpu">With the drift target and states on the GPU, its original stream lives there too (<see cref="GpuMemoryPlan.OriginalOnGpu"/>).</param>
/// <param name="Sequential">A block's Hessians are captured one sublayer at a time (<see cref="QuantizerTuning.SequentialCapture"/>).</param>
/// <param name="WholeStages">A sequential stage of few linears quantizes all of them at once (<see cref="InFlight.WholeStages"/>).</param>
/// <param name="StageStash">A sequential capture may keep stage stashes (<see cref="ConvertSettings.StageStash"/>): on the host where the states are there, on the GPU where <paramref name="StashOnGpu"/>.</param>
/// <param name="StashOnGpu">The stage stashes live on the GPU beside the states (<see cref="GpuMemoryPlan.StashOnGpu"/>).</param>
public sealed record ResourceInputs(
    TransformerSpec Spec,
    int CalRows,
    int CalCols,
    IReadOnlyDictionary<string, int> Bits,
    int HeadBits,
    int SourceElementBytes,
    Func<int, int> LinearsInFlight,
    long OtherFilesBytes,
    long ExistingWorkBytes,
    GpuShape? Gpu,
    bool StatesOnGpu = false,
    bool Lean = false,
    bool OriginalStream = false,
    bool Sequential = false,
    bool OriginalOnGpu = false,
    bool WholeStages = false,
    bool StageStash = false,
    bool StashOnGpu = false,
    bool HostTargets = false);

/// <summary>What is free where the job would run: memory now, disk under the work and output directories.</summary>
/// <param name="GpuBytes">Free GPU memory, or null on the CPU.</param>
/// <param name="SameDisk">True when the work and output directories share a file system (their needs add up).</param>
/// <param name="OtherGpus">The free memory of every GPU of a <c>--device</c> list after the first, by name.</param>
public sealed record AvailableResources(long HostBytes, long? GpuBytes, long WorkDiskBytes, long OutputDiskBytes, bool SameDisk,
    IReadOnlyList<(string Device, long Bytes)>? OtherGpus = null);

/// <summary>
/// The estimate: host memory at the peak module (the calibration states unless they are on the GPU, the module's float32 weights, its
/// Hessians and the working copies of the linears quantized at once, the forward's activations), GPU memory from the
/// CUDA layer's allocations (and the states when they are there), work-directory disk (two checkpoint state files during a rotation plus the per-module
/// files) and output disk; and the largest single array the job allocates, which .NET caps at <see cref="Array.MaxLength"/>.
/// </summary>
public sealed record ResourceNeeds(
    long HostBytes,
    long GpuBytes,
    long WorkDiskBytes,
    long OutputDiskBytes,
    long StateBytes,
    bool StatesOnGpu,
    string PeakModule,
    string LargestArray,
    long LargestArrayLength,
    long OtherGpuBytes = 0,
    long HostStashBytes = 0)
{
    /// <summary>One phrase per resource that does not fit (empty when the job fits), for a one-line refusal.</summary>
    public IReadOnlyList<string> Shortfalls(AvailableResources available)
    {
        var shortfalls = new List<string>();
        if (LargestArrayLength > Array.MaxLength)
            shortfalls.Add($"{LargestArray} needs one array of {LargestArrayLength} values, more than .NET arrays hold ({Array.MaxLength})");
        if (HostBytes > available.HostBytes)
            shortfalls.Add($"host memory: needs about {HumanFormat.Bytes(HostBytes)} ({StatesPhrase}, peak at {PeakModule}), {HumanFormat.Bytes(available.HostBytes)} available" +
                (HostStashBytes > 0 ? $"; --stage-stash false needs {HumanFormat.Bytes(HostStashBytes)} less" : ""));
        if (available.GpuBytes is { } gpu && GpuBytes > gpu)
            shortfalls.Add($"GPU memory: needs about {HumanFormat.Bytes(GpuBytes)}{(StatesOnGpu ? $" ({StatesPhrase})" : "")}, {HumanFormat.Bytes(gpu)} free");
        foreach (var (device, free) in available.OtherGpus ?? [])
        {
            if (OtherGpuBytes > free)
                shortfalls.Add($"GPU memory on {device}: its share of the linears needs about {HumanFormat.Bytes(OtherGpuBytes)}, {HumanFormat.Bytes(free)} free");
        }
        if (available.SameDisk)
        {
            if (WorkDiskBytes + OutputDiskBytes > available.WorkDiskBytes)
                shortfalls.Add($"disk: work directory and output need about {HumanFormat.Bytes(WorkDiskBytes + OutputDiskBytes)}, {HumanFormat.Bytes(available.WorkDiskBytes)} free");
        }
        else
        {
            if (WorkDiskBytes > available.WorkDiskBytes)
                shortfalls.Add($"disk: the work directory needs about {HumanFormat.Bytes(WorkDiskBytes)} (checkpoints of {HumanFormat.Bytes(StateBytes)}), {HumanFormat.Bytes(available.WorkDiskBytes)} free");
            if (OutputDiskBytes > available.OutputDiskBytes)
                shortfalls.Add($"disk: the output needs about {HumanFormat.Bytes(OutputDiskBytes)}, {HumanFormat.Bytes(available.OutputDiskBytes)} free");
        }
        return shortfalls;
    }

    /// <summary>The calibration states' size and place, for the messages.</summary>
    private string StatesPhrase => $"calibration states {HumanFormat.Bytes(StateBytes)} on the {(StatesOnGpu ? "GPU" : "host")}";

    /// <summary>One log line: each need beside what is available.</summary>
    public string Describe(AvailableResources available) =>
        $"host memory {HumanFormat.Bytes(HostBytes)} of {HumanFormat.Bytes(available.HostBytes)} available (peak at {PeakModule})" +
        (available.GpuBytes is { } gpu ? $", GPU {HumanFormat.Bytes(GpuBytes)} of {HumanFormat.Bytes(gpu)} free" : "") +
        string.Concat((available.OtherGpus ?? []).Select(o => $", {o.Device} {HumanFormat.Bytes(OtherGpuBytes)} of {HumanFormat.Bytes(o.Bytes)} free")) + $", {StatesPhrase}" +
        $", disk {HumanFormat.Bytes(WorkDiskBytes)} for the work directory and {HumanFormat.Bytes(OutputDiskBytes)} for the output" +
        (available.SameDisk ? $" of {HumanFormat.Bytes(available.WorkDiskBytes)} free" : $" of {HumanFormat.Bytes(available.WorkDiskBytes)} and {HumanFormat.Bytes(available.OutputDiskBytes)} free");
}

/// <summary>
/// Estimates a conversion's memory and disk from the model's shape before any work (a pure function of
/// <see cref="ResourceInputs"/>), so a job that cannot fit is refused at once instead of dying at its first checkpoint
/// or at the head hours later. Each term follows an allocation of the code it names; the .NET heap may hold garbage
/// beyond them, so the figure is what the job needs at least, not a bound.
/// </summary>
public static class ResourceEstimate
{
    /// <summary>
    /// Kernel modules and cuBLAS/cuSOLVER workspaces allocated as the job runs. The free memory the estimate is checked
    /// against is read after the backend has opened its context and library handles, so those are not counted again.
    /// </summary>
    private const long GpuContextBytes = 512L << 20;

    /// <summary>Weights CudaDenseAlgebra keeps on the device (its LRU of CachedWeights = 8).</summary>
    private const int CachedWeights = Cuda.Blas.CudaDenseAlgebra.DefaultCachedWeights;

    /// <summary>CudaDenseAlgebra.Scratch allocates 25% more than asked.</summary>
    private const double ScratchHeadroom = 1.25;

    /// <summary>The runtime, JIT-compiled code, tokenizer and codebook tables before any tensor: ~170 MB measured (tiny-llama's peak RSS less its tensors).</summary>
    private const long ProcessBytes = 256L << 20;

    /// <summary>Bytes of a checkpoint state file's header and of a module file's, rounded up.</summary>
    private const long HeaderBytes = 1 << 16;

    public static ResourceNeeds For(ResourceInputs inputs)
    {
        var spec = inputs.Spec;
        var model = new TransformerModel(spec);
        long cols = inputs.CalCols, hidden = spec.HiddenSize, vocab = spec.VocabSize;
        long chunkTokens = (long)CalibrationState.ChunkRows(inputs.CalCols) * cols;
        long state = HiddenStates.Bytes(inputs.CalRows, cols, hidden);
        long ids = 4L * inputs.CalRows * cols;
        bool gpu = inputs.Gpu is not null;
        var largest = new LargestArray();
        largest.Add("a calibration row's hidden states", cols * hidden);

        long peakHost = 0, peakGpu = 0, moduleFiles = 0;
        string peakModule = "";
        IReadOnlyList<Linear> previous = [];
        for (int m = 0; m < model.Modules.Count; m++)
        {
            var module = model.Modules[m];
            // The next module's weights are read while this one converts (ModulePrefetch), and the previous one's file is
            // still being written (ModuleWriteQueue).
            long prefetched = m + 1 < model.Modules.Count ? model.Modules[m + 1].Linears.Sum(l => WeightBytes(l)) : 0;
            prefetched += m > 0 ? WriteHeldBytes(inputs, model.Modules[m - 1]) : 0;
            // Each capture stage's Gram and cross sums, solves and linears live only through that stage, so a module's
            // peak is its largest stage's (a 70B's down_proj stage: its layer was 34 GiB counted all at once).
            var stages = ModuleConverter.CaptureStages(module, inputs.Sequential);
            long host = prefetched + module switch
            {
                // The table and, for device states, the lookup's row buffers (CalibrationState.Embed: two chunks' tokens).
                EmbeddingModule => 4 * vocab * hidden + 8 * chunkTokens * hidden,
                FinalNormModule => 8 * chunkTokens * hidden,
                LmHeadModule => HeadHost(inputs, module, largest),
                _ => BlockHost(inputs, module, chunkTokens, largest),
            } + stages.Select(groups => DriftHost(inputs, module, groups, chunkTokens)).DefaultIfEmpty(0).Max();
            if (module is EmbeddingModule)
                largest.Add("the embedding", vocab * hidden);
            if (host > peakHost)
                (peakHost, peakModule) = (host, module.Name);
            foreach (var groups in stages)
                peakGpu = Math.Max(peakGpu, ModuleGpu(inputs, module, groups, previous, DriftGpu(inputs, module, groups)));
            if (module.LinearGroups.Count > 0)
                previous = module.Linears.ToList();
            moduleFiles += ModuleFileBytes(inputs, module);
        }

        // One set of states: each step writes its outputs over its inputs (CalibrationState.Advance).
        bool statesOnGpu = gpu && inputs.StatesOnGpu;
        // The drift target's original stream is a second set of states, on the host unless the plan puts it beside the
        // quantized one on the GPU, saved with every checkpoint.
        long originalStream = inputs.OriginalStream ? state : 0;
        bool originalOnGpu = statesOnGpu && inputs.OriginalOnGpu;
        // A sequential capture's stage stashes, one per stream (StageStash): at most the attended values and the residual
        // of every row at once (one array when they are as wide).
        long stash = !inputs.Sequential || !inputs.StageStash ? 0 : StashBytes(inputs, model) * (inputs.OriginalStream ? 2 : 1);
        // On the host in a run without a GPU; on a GPU only in a plan that puts them there (GpuMemoryPlan.KeepsStashes).
        long hostStash = gpu ? 0 : stash, gpuStash = gpu && inputs.StashOnGpu ? stash : 0;
        long hostBytes = ProcessBytes + (statesOnGpu ? 0 : state) + (originalOnGpu ? 0 : originalStream) + 2 * ids + peakHost + hostStash;
        long gpuBytes = gpu ? GpuContextBytes + EncoderBytes(inputs) + ForwardScratch(inputs, chunkTokens) + peakGpu + (statesOnGpu ? state : 0) + (originalOnGpu ? originalStream : 0) + gpuStash : 0;
        long stateFile = state + ids + HeaderBytes + (inputs.OriginalStream ? state + ids + HeaderBytes : 0);
        // A new checkpoint is written complete before the old one is removed (JobCheckpoint.Save): two state files at once.
        long work = Math.Max(0, 2 * stateFile + moduleFiles - inputs.ExistingWorkBytes);
        long output = moduleFiles + inputs.OtherFilesBytes;
        return new ResourceNeeds(hostBytes, gpuBytes, work, output, state, statesOnGpu, peakModule, largest.Name, largest.Length,
            gpu ? OtherGpuBytes(inputs, model) : 0, hostStash);
    }

    /// <summary>One stream's stage stash at its largest: every row's residual, and its attended values where they are another width.</summary>
    private static long StashBytes(ResourceInputs inputs, TransformerModel model)
    {
        long hidden = inputs.Spec.HiddenSize;
        long attended = model.Modules.OfType<DecoderBlock>().SelectMany(b => b.LinearGroups).Where(g => g.Site == LinearSite.AttentionOutput)
            .Select(g => (long)g.InFeatures).DefaultIfEmpty(hidden).Max();
        return HiddenStates.Bytes(inputs.CalRows, inputs.CalCols, attended == hidden ? hidden : hidden + attended);
    }

    /// <summary>
    /// A GPU of a <c>--device</c> list after the first: it only quantizes the linears placed on it (LinearPlacement),
    /// so it holds its context, its encoders and the linears it has in flight, which may be any of a module's (the
    /// largest, when the speeds place them there). No states, Gram sums, forward scratch or weight cache.
    /// </summary>
    private static long OtherGpuBytes(ResourceInputs inputs, TransformerModel model) =>
        GpuContextBytes + EncoderBytes(inputs) + model.Modules
            .Where(m => m.LinearGroups.Count > 0 && (m is not LmHeadModule || inputs.HeadBits != 16))
            .Select(m => InFlight(inputs, m, l => QuantizeGpu(l, inputs.Lean, inputs.HostTargets, ModuleConverter.WidestInput(m), inputs.OriginalStream)))
            .DefaultIfEmpty(0).Max();

    /// <summary>The columns of a group's cross sum: its outputs where it is projected (<see cref="DriftCapture.ProjectionOf"/>), else its inputs.</summary>
    private static long CrossColumns(LinearGroup group) =>
        Regularize.Hessian.DriftAccumulator.Projects(group.InFeatures, group.OutFeatures) ? group.OutFeatures : group.InFeatures;

    /// <summary>
    /// The drift target's host memory in a capture stage (<see cref="DriftCapture"/>): per group a chunk's worth of the
    /// original stream's input copy and the packed inputs and differences the cross sum reads (12 bytes per token and
    /// input), a projected sum's products of the differences (8 bytes per token and column), on the CPU also the
    /// transposes and the float64 sum with its float product (4 bytes per token and input and column, 12 per sum
    /// entry); then the correction of the largest group (on a GPU only G or the projected steps come back, 4 bytes per
    /// entry; on the CPU the matrix the solve factors, 8 per k² entry, and the float64 sum's copy and the float result,
    /// 12 per entry); and with a sequential capture the module's original weights, kept beside their reconstructions
    /// for the original stream (<see cref="OriginalWeights"/>). Zero when the target is off.
    /// </summary>
    private static long DriftHost(ResourceInputs inputs, ModelModule module, IReadOnlyList<LinearGroup> groups, long chunkTokens)
    {
        if (!inputs.OriginalStream || groups.Count == 0)
            return 0;
        bool gpu = inputs.Gpu is not null;
        long tokens = module is LmHeadModule ? (long)ModuleConverter.HeadCaptureRows * inputs.CalCols : chunkTokens;
        long Sum(LinearGroup g)
        {
            long k = g.InFeatures, c = CrossColumns(g);
            return 12L * tokens * k + (c == k ? 0 : 8L * tokens * c) + (gpu ? 0 : 12L * k * c + 4L * tokens * (k + c));
        }
        long Correction(LinearGroup g)
        {
            long k = g.InFeatures, c = CrossColumns(g);
            return gpu ? 4L * k * c : 8L * k * k + 12L * k * c;
        }
        long originals = inputs.Sequential && module is DecoderBlock ? module.Linears.Sum(l => WeightBytes(l)) : 0;
        return groups.Sum(Sum) + groups.Max(Correction) + originals;
    }

    /// <summary>
    /// The drift target's GPU memory in a capture stage, by phase: each group's float64 cross sum and float product
    /// stripe (<see cref="Cuda.Blas.CudaDenseAlgebra.CrossBytes"/>: k × k, or k × outputs projected), alive from the
    /// capture to the group's solve; the scratch a chunk's cross product reads with (the difference, and projected its
    /// product by the weights, 4 bytes per token and column; grow-only, kept for the run) beside the original stream's
    /// rows; the solve of the largest group (its matrix in float64 and the result in float32; the right-hand side is
    /// the cross sum itself); and outside a lean plan, where G stays on the device, the target made there for the
    /// largest linear but a head-sized one (<see cref="TargetGpu"/>, <see cref="ModuleConverter.MakesTargetOnDevice"/>).
    /// None on the CPU or when the target is off.
    /// </summary>
    private static DriftGpuBytes DriftGpu(ResourceInputs inputs, ModelModule module, IReadOnlyList<LinearGroup> groups)
    {
        if (!inputs.OriginalStream || inputs.Gpu is null || groups.Count == 0)
            return DriftGpuBytes.None;
        long chunkTokens = module is LmHeadModule ? (long)ModuleConverter.HeadCaptureRows * inputs.CalCols
            : (long)CalibrationState.ChunkRows(inputs.CalCols) * inputs.CalCols;
        long chunk = groups.Max(g => 8L * g.InFeatures + (CrossColumns(g) == g.InFeatures ? 0 : 4L * CrossColumns(g)));
        long solve = groups.Max(g => 8L * g.InFeatures * g.InFeatures + 4L * g.InFeatures * CrossColumns(g));
        long target = inputs.Lean ? 0 : groups.SelectMany(g => g.Linears.Where(ModuleConverter.MakesTargetOnDevice).Select(l => TargetGpu(g, l))).DefaultIfEmpty(0).Max();
        return new DriftGpuBytes(groups.Sum(g => Cuda.Blas.CudaDenseAlgebra.CrossBytes(g.InFeatures, (int)CrossColumns(g))),
            (long)(ScratchHeadroom * chunkTokens * chunk), solve, target);
    }

    /// <summary>
    /// A drift target made on the device outside a lean plan: of a square sum W, W·Gᵀ and T padded (12 bytes a weight);
    /// of a projected one W and T padded beside the group's kept steps (k × outputs).
    /// </summary>
    private static long TargetGpu(LinearGroup group, Linear linear)
    {
        long padded = (long)LinearQuantizer.Pad(linear.InFeatures) * LinearQuantizer.Pad(linear.OutFeatures);
        return CrossColumns(group) == group.InFeatures ? 12L * padded : 8L * padded + 4L * group.InFeatures * CrossColumns(group);
    }

    /// <summary>A capture stage's drift target on the GPU by phase (<see cref="DriftGpu"/>).</summary>
    /// <param name="Sums">The stage's cross sums, from its capture until each group's solve.</param>
    /// <param name="Chunk">A chunk's cross product scratch and the original stream's rows beside it.</param>
    /// <param name="Solve">The largest group's solve, beside the sums.</param>
    /// <param name="Target">The largest target made on the device, beside the kept G.</param>
    private sealed record DriftGpuBytes(long Sums, long Chunk, long Solve, long Target)
    {
        public static readonly DriftGpuBytes None = new(0, 0, 0, 0);

        /// <summary>All of it at once: what a plan that is not lean counts (its memory is ample; the phases are not told apart).</summary>
        public long AllAtOnce => Sums + Chunk + Math.Max(Solve, Target);
    }

    /// <summary>
    /// A decoder block on the host: its float32 weights (and the reconstruction that replaces one), its groups'
    /// Hessians, the reference rows' outputs, then either the linears in flight or a forward chunk's activations.
    /// </summary>
    private static long BlockHost(ResourceInputs inputs, ModelModule module, long chunkTokens, LargestArray largest)
    {
        var spec = inputs.Spec;
        var linears = module.Linears.ToList();
        long weights = linears.Sum(l => WeightBytes(l)) + linears.Max(l => WeightBytes(l));
        long hessians = module.LinearGroups.Sum(g => HessianHost(inputs, g.InFeatures, chunkTokens));
        long reference = 4L * ModuleConverter.ReferenceRows * inputs.CalCols * spec.HiddenSize;
        foreach (var l in linears)
            largest.Add($"{l.Name} padded", (long)LinearQuantizer.Pad(l.InFeatures) * LinearQuantizer.Pad(l.OutFeatures));
        foreach (var g in module.LinearGroups)
            largest.Add($"the Hessian of {g}", (long)LinearQuantizer.Pad(g.InFeatures) * LinearQuantizer.Pad(g.InFeatures));
        // DecoderBlock.Forward on the host: input, norm, q/k/v, attention, its projection, residual, gate/up, output.
        long activations = inputs.Gpu is null
            ? 4 * chunkTokens * (6L * spec.HiddenSize + 2L * spec.QueryWidth + 2L * spec.KeyValueWidth + 3L * spec.IntermediateSize)
            : 4 * chunkTokens * 2L * spec.HiddenSize;
        long quantizing = InFlight(inputs, module, l => QuantizeHost(inputs, l));
        return weights + hessians + Math.Max(quantizing + reference, activations + 2 * reference);
    }

    /// <summary>
    /// The head on the host: its weight, its Hessian fed 16 gathered rows at a time, its quantization, and on the CPU
    /// the comparison's logits after quantizing (the quantized, the reference and the original stream's, one pass's rows
    /// each); a GPU reduces them where it makes them (HeadComparison).
    /// </summary>
    private static long HeadHost(ResourceInputs inputs, ModelModule module, LargestArray largest)
    {
        var spec = inputs.Spec;
        var head = module.Linears.Single();
        long vocab = spec.VocabSize, hidden = spec.HiddenSize;
        long gathered = (long)ModuleConverter.HeadCaptureRows * inputs.CalCols * hidden;
        long comparedLogits = (long)HeadComparison.RowsPerPass(inputs.CalCols) * inputs.CalCols * vocab;
        largest.Add("lm_head padded", (long)LinearQuantizer.Pad(head.InFeatures) * LinearQuantizer.Pad(head.OutFeatures));
        largest.Add("the head's input gathered for its Hessian", gathered);
        if (inputs.Gpu is null)
            largest.Add("a comparison's logits", comparedLogits);
        long quantizing = inputs.HeadBits == 16 ? 0 : QuantizeHost(inputs, head);
        long hessian = HessianHost(inputs, head.InFeatures, gathered / hidden);
        long comparison = inputs.Gpu is null ? 12 * comparedLogits : 0;
        // The original weight is kept beside its reconstruction until the comparison.
        return 2 * WeightBytes(head) + hessian + Math.Max(4 * gathered, Math.Max(quantizing, comparison));
    }

    /// <summary>
    /// Host working copies of one linear while it is quantized (LinearQuantizer, Ldlq, ProxyError): W, whose array then
    /// takes LDLQ's Q, and the regularized target (k·n floats each); on the host also LDLQ's error and states and the
    /// proxy's E and H·E (18 bytes a weight), the basis Hessian, the LDL factor, its float64 Cholesky and its transpose
    /// (16 bytes per k² entry); on a GPU only the returned states besides (10 bytes a weight), and in a lean run the
    /// basis Hessian, which comes down before its factor takes its device memory (CudaLdlqSolver.FactorInBasis).
    /// </summary>
    private static long QuantizeHost(ResourceInputs inputs, Linear linear)
    {
        long k = LinearQuantizer.Pad(linear.InFeatures), n = LinearQuantizer.Pad(linear.OutFeatures);
        return inputs.Gpu is null ? 18 * k * n + 16 * k * k : 10 * k * n + (inputs.Lean ? 4 * k * k : 0);
    }

    /// <summary>
    /// One group's Hessian on the host: on the CPU the float64 sum, its float32 product and the transposed chunk
    /// (CpuDenseAlgebra) and the padded float32 mean; on a GPU only the mean, which the device computes
    /// (IGramAccumulator.Mean) so that the float64 sum never comes to the host.
    /// </summary>
    private static long HessianHost(ResourceInputs inputs, int inFeatures, long chunkTokens)
    {
        long k = LinearQuantizer.Pad(inFeatures);
        return inputs.Gpu is null ? 16 * k * k + 4 * chunkTokens * k : 4 * k * k;
    }

    /// <summary>
    /// A module's GPU memory through one capture stage (<paramref name="groups"/>, <see cref="ModuleConverter.CaptureStages"/>) besides
    /// the context, encoders and forward scratch: the stage's Gram sums (float64 k² and a float32 product stripe),
    /// the head's input and logits scratch (grow-only, allocated by its capture), and the weights on the device (the 8
    /// most recently used: CudaDenseAlgebra's LRU), with either the linears quantized at once (CudaLdlqSolver,
    /// CudaDenseAlgebra.ProxyTraces) beside the originals, or, in the forward after quantizing, the reconstructions too.
    /// </summary>
    private static long ModuleGpu(ResourceInputs inputs, ModelModule module, IReadOnlyList<LinearGroup> groups, IReadOnlyList<Linear> previous, DriftGpuBytes drift)
    {
        if (inputs.Gpu is null || groups.Count == 0)
            return 0;
        var linears = module.Linears.ToList();
        // A sequential drift capture keeps a block's originals and reconstructions both (ModuleConverter).
        int entries = inputs.Sequential && inputs.OriginalStream && module is DecoderBlock ? Math.Max(CachedWeights, 2 * linears.Count) : CachedWeights;
        long Cached(IEnumerable<Linear> weights) =>
            weights.Concat(previous).Concat(previous).Select(l => WeightBytes(l)).OrderByDescending(b => b).Take(entries).Sum();
        long gram = groups.Sum(g => Cuda.Blas.CudaDenseAlgebra.GramBytes(g.InFeatures));
        long scratch = 0;
        if (module is LmHeadModule)
        {
            // The capture's gathered rows, or the comparison's states of both streams and two sets of logits (HeadComparison).
            long compared = (long)HeadComparison.RowsPerPass(inputs.CalCols) * inputs.CalCols;
            long x = Math.Max(2 * compared, (long)ModuleConverter.HeadCaptureRows * inputs.CalCols) * inputs.Spec.HiddenSize;
            scratch = (long)(ScratchHeadroom * 4 * (x + 2 * compared * inputs.Spec.VocabSize));
        }
        bool quantized = module is not LmHeadModule || inputs.HeadBits != 16;
        if (inputs.Lean)
        {
            // The capture's forward holds the module's weights beside its Gram sums; the Hessians are then all finalized
            // (the sums freed) and the cache emptied before the linears in flight are quantized; the forward after it
            // holds the module's reconstructions (the cache's cap, the largest module's weights, keeps no more).
            long weights = linears.Sum(l => WeightBytes(l));
            // A sum's mean (4 bytes a padded entry) is made beside the sums (IGramAccumulator.Mean), after the cache is emptied.
            long mean = groups.Max(g => 4L * LinearQuantizer.Pad(g.InFeatures) * LinearQuantizer.Pad(g.InFeatures));
            // The drift target's cross sums live from the capture to their solves, which run one at a time after the
            // sums' means are made, beside the damped H a lone linear's solver keeps (a 70B down_proj's 3.3 GB); its
            // chunk scratch stays for the run. Counted as if all at once, a 70B layer's job came to 23.1 GiB; by phase, 16.6.
            long capture = gram + drift.Sums + Math.Max(module is LmHeadModule ? 0 : weights, mean);
            long solve = drift.Solve == 0 ? 0 : drift.Sums + drift.Solve + mean;
            long quantizing = quantized ? InFlight(inputs, module, groups, l => QuantizeGpu(l, lean: true, inputs.HostTargets, ModuleConverter.WidestInput(module), inputs.OriginalStream)) + drift.Sums : 0;
            return scratch + drift.Chunk + Math.Max(Math.Max(capture, solve), Math.Max(quantizing, weights));
        }
        long inFlight = quantized ? Cached(linears) + InFlight(inputs, module, groups, l => QuantizeGpu(l, lean: false, hostTargets: false, ModuleConverter.WidestInput(module), inputs.OriginalStream)) : 0;
        return gram + scratch + Math.Max(inFlight, Cached(linears.Concat(linears))) + drift.AllAtOnce;
    }

    /// <summary>
    /// One linear's device memory while quantized, the largest of its three steps: LDLQ (the matrix, the states and
    /// L_u: 6 bytes a weight and k² floats), the block LDL (the float basis Hessian H', its float64 copy and L_u) and
    /// the proxy error's traces (W, Q and their product, 12 bytes a weight, in a lean run in column stripes of at most
    /// <see cref="Cuda.Blas.CudaDenseAlgebra.LeanProxyStripeValues"/> weights, and H'). H' stays on the device from
    /// its rotation to the proxy (k² floats more through LDLQ, and L_u beside it in the block LDL), except in a lean
    /// run, where L_u takes its memory (CudaLdlqSolver.FactorInBasis). Unless the plan keeps them on the host, W and its
    /// target are held on the device from the regularization on (8 bytes a weight through the block LDL, 4 more through
    /// the block loop; in a lean run, whose H' has come down, through the traces' stripes too). With the drift target,
    /// its making (W and W·Gᵀ beside T, 12 bytes a weight, or 16 with W held) where it runs on the device.
    /// </summary>
    private static long QuantizeGpu(Linear linear, bool lean, bool hostTargets, int widestInput, bool driftTarget)
    {
        long k = LinearQuantizer.Pad(linear.InFeatures), n = LinearQuantizer.Pad(linear.OutFeatures);
        long traced = k * Cuda.Blas.CudaDenseAlgebra.ProxyStripeWidth((int)k, (int)n, lean);
        long kept = lean ? 0 : 4 * k * k;
        // W and its target held on the device from the regularization to the proxy traces (ModuleConverter.HoldsTargetOnDevice):
        // both beside the block LDL, the target beside the block loop (whose matrix is W's memory). Outside a lean run
        // the traces' T, Q and product are the 12 bytes a weight either way; a lean run's H' is on the host, so the
        // traces go through stripes beside the held pair.
        long held = ModuleConverter.HoldsTargetOnDevice(linear, widestInput, hostTargets) ? 8 * k * n : 0;
        // The drift target made on the device takes W and W·Gᵀ up beside T (T in the held W's place, else its own
        // buffer); a head-sized one's, and every one in a lean plan (whose G is kept on the host), is made on the host
        // from a device product in blocks of rows (CudaDenseAlgebra.ProductBlockValues), beside the held pair.
        long target = !driftTarget ? 0
            : !lean && ModuleConverter.MakesTargetOnDevice(linear) ? 8 * k * n + Math.Max(held, 4 * k * n)
            : held + 8 * Math.Min(k * n, Cuda.Blas.CudaDenseAlgebra.ProductBlockValues);
        long traces = (lean ? held : 0) + 12 * traced + 4 * k * k;
        return Math.Max(target, Math.Max(6 * k * n + held / 2 + 4 * k * k + kept + 512 * n, Math.Max(held + 12 * k * k + kept, traces)));
    }

    /// <summary>
    /// The decoder forward's grow-only scratch (CudaForwardBackend.Buffer), kept for the whole run: residual, norm,
    /// q/k/v, attention and projection, gate and up for a chunk, and the attention scores of its rows where the
    /// attention runs as batched products (rows long enough for the fused kernel have none).
    /// </summary>
    private static long ForwardScratch(ResourceInputs inputs, long chunkTokens)
    {
        var spec = inputs.Spec;
        if (spec.Layers == 0)
            return 0;
        long perToken = 3L * spec.HiddenSize + 2L * spec.QueryWidth + 2L * spec.KeyValueWidth + 2L * spec.IntermediateSize;
        int valueWidth = spec.LatentAttention?.ValueDim ?? spec.HeadDim;
        long scores = Cuda.Models.CudaForwardBackend.TakesFusedAttention(Cuda.Models.GpuAttention.Auto, inputs.CalCols, valueWidth)
            ? 0
            : (long)CalibrationState.ChunkRows(inputs.CalCols) * spec.Heads * inputs.CalCols * inputs.CalCols;
        return (long)(ScratchHeadroom * 4 * (chunkTokens * perToken + scores));
    }

    /// <summary>
    /// The GPU encoders, one per K in use (CudaTileEncoder): the search's path history of 2^(16−K) nodes per position
    /// for the tiles every multiprocessor holds (two, one at K = 1), the tables, and the 64Ki-tile staging buffers.
    /// </summary>
    private static long EncoderBytes(ResourceInputs inputs)
    {
        var ks = inputs.Bits.Values.Append(inputs.HeadBits).Where(k => k is >= 1 and <= 8).Distinct();
        return ks.Sum(k => (long)inputs.Gpu!.Multiprocessors * (k == 1 ? 1 : 2) * 256 * (1L << (16 - k)) * 2 + (1L << 16) * 256 * 6 + (1L << 16) * 6);
    }

    /// <summary>
    /// The working sets of the linears a capture stage (<paramref name="groups"/>) quantizes at once: with a sequential
    /// capture only the stage's own linears are in flight (ModuleConverter quantizes a stage's before the next one's
    /// capture), at the count its size gives (<see cref="Pipeline.InFlight.InStage"/>); else as <see cref="InFlight(ResourceInputs, ModelModule, Func{Linear, long})"/>.
    /// A 70B's down_proj stage has one linear: counting gate_proj's beside it sent the default quantizer's 20 GiB plan
    /// to one linear in flight for every stage.
    /// </summary>
    private static long InFlight(ResourceInputs inputs, ModelModule module, IReadOnlyList<LinearGroup> groups, Func<Linear, long> workingSet)
    {
        if (!inputs.Sequential || module is not DecoderBlock)
            return InFlight(inputs, module, workingSet);
        var sizes = groups.SelectMany(g => g.Linears).Select(workingSet).ToList();
        int degree = Pipeline.InFlight.InStage(Math.Max(1, inputs.LinearsInFlight(sizes.Count)), sizes.Count, inputs.WholeStages);
        return sizes.OrderByDescending(b => b).Take(degree).Sum();
    }

    /// <summary>
    /// The working sets of the linears quantized at once: the largest <see cref="ResourceInputs.LinearsInFlight"/> of the
    /// module's, or a whole sequential stage's (<see cref="InFlight.InStage"/>) when that is more.
    /// </summary>
    private static long InFlight(ResourceInputs inputs, ModelModule module, Func<Linear, long> workingSet)
    {
        var sizes = module.Linears.Select(workingSet).ToList();
        long largest = sizes.OrderByDescending(b => b).Take(Math.Max(1, inputs.LinearsInFlight(sizes.Count))).Sum();
        if (!inputs.WholeStages || module is not DecoderBlock)
            return largest;
        long stage = module.LinearGroups.GroupBy(g => g.Sublayer)
            .Select(s => s.SelectMany(g => g.Linears).ToList())
            .Where(s => s.Count <= Pipeline.InFlight.WholeStage)
            .Select(s => s.Sum(workingSet))
            .DefaultIfEmpty(0).Max();
        return Math.Max(largest, stage);
    }

    private static long WeightBytes(Linear linear) => 4L * linear.InFeatures * linear.OutFeatures;

    /// <summary>
    /// The host arrays a module's file is written from, alive while it is written behind the next module
    /// (<see cref="ModuleWriteQueue"/>): per quantized linear the trellis (k·n·K/8 bytes) and float32 suh, svh and bias;
    /// a 16-bit head's float32 weight; a passed-through tensor only from a float32 source (read whole, stored fp16;
    /// any other is copied from the checkpoint's mapping as it is written).
    /// </summary>
    public static long WriteHeldBytes(ResourceInputs inputs, ModelModule module) =>
        module.Linears.Sum(l => LinearBytes(inputs, l, element: 4, marker: false))
        + (inputs.SourceElementBytes == 4 ? 4 * PassedThroughValues(inputs.Spec, module) : 0);

    /// <summary>
    /// What a module writes to the work directory and, assembled, to the output (docs/exl3-format.md §4.1–§4.2): per linear
    /// the trellis (k·n·K/8 bytes), fp16 suh and svh, the codebook marker and an fp16 bias, or an fp16 weight for a
    /// 16-bit head; the embedding and norms in their source dtype, fp32 stored as fp16.
    /// </summary>
    public static long ModuleFileBytes(ResourceInputs inputs, ModelModule module)
    {
        long element = inputs.SourceElementBytes == 4 ? 2 : inputs.SourceElementBytes;
        return HeaderBytes + module.Linears.Sum(l => LinearBytes(inputs, l, element: 2, marker: true)) + element * PassedThroughValues(inputs.Spec, module);
    }

    /// <summary>
    /// A linear's tensors with their float values of <paramref name="element"/> bytes (2 in the file, 4 in the host
    /// arrays they are written from): the trellis, suh, svh and bias, the codebook marker where <paramref name="marker"/>;
    /// or a 16-bit head's weight.
    /// </summary>
    private static long LinearBytes(ResourceInputs inputs, Linear linear, int element, bool marker)
    {
        int bits = inputs.Bits.TryGetValue(linear.Name, out var b) ? b : inputs.HeadBits;
        if (bits == 16)
            return (long)element * linear.InFeatures * linear.OutFeatures;
        long k = LinearQuantizer.Pad(linear.InFeatures), n = LinearQuantizer.Pad(linear.OutFeatures);
        return k * n * bits / 8 + element * (k + n) + (marker ? 4 : 0) + (linear.HasBias ? element * n : 0);
    }

    /// <summary>Values of the tensors a module copies from the source as they are: the embedding, the norms, a block's other non-linear tensors.</summary>
    private static long PassedThroughValues(TransformerSpec spec, ModelModule module) => module switch
    {
        EmbeddingModule => (long)spec.VocabSize * spec.HiddenSize,
        FinalNormModule => spec.HiddenSize,
        DecoderBlock block => block.TensorNames.Where(n => !block.Linears.Any(l => l.SourceTensors.Contains(n))).Sum(n => NormWidth(spec, n)),
        _ => 0,
    };

    /// <summary>
    /// Values of a block's non-linear tensor: a block norm (hidden), attention sinks (one per head), a q/k norm (per
    /// head, or the whole projection), latent attention's unquantized kv_b_proj and its latent norms, a router's weight
    /// (experts × hidden).
    /// </summary>
    private static long NormWidth(TransformerSpec spec, string name) =>
        name.EndsWith(".self_attn.sinks", StringComparison.Ordinal) ? spec.Heads
        : spec.LatentAttention is { } mla && name.EndsWith("kv_b_proj.weight", StringComparison.Ordinal) ? (long)spec.Heads * (mla.NopeDim + mla.ValueDim) * mla.KvRank
        : spec.LatentAttention is { } latent && name.EndsWith("kv_a_layernorm.weight", StringComparison.Ordinal) ? latent.KvRank
        : spec.LatentAttention is { QueryRank: { } rank } && name.EndsWith("q_a_layernorm.weight", StringComparison.Ordinal) ? rank
        : spec.Moe is { } moe && name.EndsWith($".{moe.RouterModule}.weight", StringComparison.Ordinal) ? (long)moe.Router.Experts * spec.HiddenSize
        : !name.Contains(".self_attn.", StringComparison.Ordinal) ? spec.HiddenSize
        : spec.QkNorm == QkNormPlacement.PerHead ? spec.HeadDim
        : name.EndsWith("q_norm.weight", StringComparison.Ordinal) ? spec.QueryWidth : spec.KeyValueWidth;

    /// <summary>The largest single array seen, with what it holds.</summary>
    private sealed class LargestArray
    {
        public string Name { get; private set; } = "";

        public long Length { get; private set; }

        public void Add(string name, long length)
        {
            if (length > Length)
                (Name, Length) = (name, length);
        }
    }
}
