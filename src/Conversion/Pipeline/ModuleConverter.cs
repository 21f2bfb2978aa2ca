using System.Diagnostics;
using Converter.Compute;
using Converter.Compute.Randomness;
using Converter.Conversion.Reporting;
using Converter.Eval.Metrics;
using Converter.Exl3;
using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Regularize.Hessian;
using Converter.Regularize.Quantization;
using Converter.Regularize.Reconstruction;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Viterbi;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// One step of the module loop (docs/exl3-format.md §5.2 step 5): capture the Hessians of a module's linear groups
/// from the calibration rows, quantize each linear, swap the reconstructed weights in, forward the rows again to
/// make the next module's input, and measure the module's error on the reference rows. Modules read the source's
/// names; every tensor and record it produces carries the name the output is written under (<see cref="TensorNames.Written"/>).
/// </summary>
/// <remarks>
/// With a <see cref="DeviceSet"/> of several devices, <paramref name="backend"/> (its first) runs the forwards and the
/// capture, and each module's linears are spread over all of them (<see cref="LinearPlacement"/>). A lean
/// <paramref name="memory"/> plan (<see cref="GpuMemoryPlan.Lean"/>) finalizes a module's Hessians and empties the
/// devices' weight caches before its first linear, and may keep one linear in flight.
/// </remarks>
public sealed class ModuleConverter(ConvertSettings settings, ITensorReader source, TensorNames names, CodebookTableCache codebooks,
    IReadOnlyDictionary<string, int> bits, ComputeBackend backend, DeviceSet? devices = null, GpuMemoryPlan? memory = null,
    ConversionTimeline? timeline = null)
{
    /// <summary>Rows whose unquantized outputs are kept to measure each module's error (exllamav3: 5).</summary>
    public const int ReferenceRows = 5;

    /// <summary>Rows gathered at once to feed the head's Hessian (its input is the state itself).</summary>
    public const int HeadCaptureRows = 16;

    private readonly Dictionary<(int Device, int Bits), ITileEncoder> _encoders = new();
    private readonly DeviceSet? _devices = devices is null || ReferenceEquals(devices.Primary, backend) ? devices
        : throw new ArgumentException("the device set's first device must be the converter's backend", nameof(devices));
    private readonly Lock _logGate = new();
    private readonly bool _lean = memory?.Lean == true;
    private readonly bool _hostTargets = memory?.HostTargets == true;

    public sealed record Result(IReadOnlyList<PendingTensor> Tensors, IReadOnlyList<TensorRecord> Records, ModuleRecord Metrics, IReadOnlyList<string> Warnings);

    /// <param name="original">
    /// The original model's stream of the same rows, for the drift-aware target (<see cref="QuantizerTuning.DriftTarget"/>):
    /// advanced through the module with its original weights, and each group's input in it paired with the quantized
    /// stream's; null when the target is off.
    /// </param>
    /// <param name="next">The module that follows, whose weights <paramref name="prefetch"/> starts reading once this one's are in.</param>
    public Result Convert(ModelModule module, CalibrationState state, IStepProgress progress, CalibrationState? original = null, ModulePrefetch? prefetch = null,
        ModelModule? next = null)
    {
        // Loading rejects NaN/Inf in any source tensor, naming file and tensor (WeightLoader.Read).
        if (prefetch?.TryTake(module) != true)
            module.Load(source);
        if (next is not null)
            prefetch?.Start(next);
        try
        {
            return module.LinearGroups.Count == 0 ? PassThrough(module, state, original) : Quantize(module, state, progress, original);
        }
        finally
        {
            module.Release();
        }
    }

    /// <summary>Embedding and final norm: copied (§4.2), and run to advance the state.</summary>
    private Result PassThrough(ModelModule module, CalibrationState state, CalibrationState? original)
    {
        var clock = Stopwatch.StartNew();
        var dropped = state.Advance(module);
        original?.Advance(module);
        var tensors = module.TensorNames.Select(CopySourceTensor).ToList();
        var metrics = new ModuleRecord(names.Written(module.Name), null, null, null, null, 0, 0, clock.Elapsed.TotalSeconds);
        return new Result(tensors, [], metrics, DroppedWarnings(module, dropped));
    }

    private Result Quantize(ModelModule module, CalibrationState state, IStepProgress progress, CalibrationState? original)
    {
        bool isHead = module is LmHeadModule;
        var good = state.GoodRows.ToList();
        var referenceRows = good.Take(ReferenceRows).ToList();
        var jobs = module.LinearGroups.SelectMany(g => g.Linears.Select(l => (Group: g, Linear: l))).ToList();
        var outcomes = new LinearOutcome[jobs.Count];
        var stages = CaptureStages(module, settings.Tuning.SequentialCapture);
        // The original stream runs the module as the original model does, also after earlier sublayers were swapped
        // for their reconstructions.
        var originalWeights = stages.Count > 1 && original is not null ? new OriginalWeights(module.Linears) : null;
        Matrix? reference = null, originalHead = null;
        double captureSeconds = 0, quantizeSeconds = 0;
        // The two streams' passes alternate the originals and the reconstructions per chunk: the device keeps both, in
        // a lean plan as far as its byte cap lets it (WeightCachePolicy; with the count left at 8 there, LRU re-uploaded
        // all 15 of a 70B down_proj stage's weights every chunk, 9.9 s of its 15.4 s capture on an H100).
        var cache = originalWeights is not null ? backend.Algebra as Cuda.Blas.CudaDenseAlgebra : null;
        // Each stream keeps the block's activations at the stage boundaries, so a later stage starts there (StageStash).
        bool staged = stages.Count > 1 && module is DecoderBlock { Spec.ParallelBlock: false } && StashesStages;
        using var stash = staged ? state.HoldStash() : null;
        using var originalStash = staged ? original?.HoldStash() : null;
        int cached = cache?.CachedWeights ?? 0;
        if (cache is not null)
            cache.CachedWeights = Math.Max(cached, 2 * jobs.Count);
        try
        {
            for (int s = 0; s < stages.Count; s++)
            {
                // The reference rows' outputs come from the first capture, the only one with every weight original.
                int sublayer = stages[s][0].Sublayer;
                var stage = new CaptureStage(stages[s], s == 0 ? referenceRows.Count : 0, s == stages.Count - 1, s == 0 ? null : originalWeights,
                    stash is null ? null : new StashRun(stash, sublayer), originalStash is null ? null : new StashRun(originalStash, sublayer));
                var (kept, head, capture, quantize) = CaptureAndQuantize(module, stage, state, original, good, jobs, outcomes, progress);
                reference ??= kept;
                originalHead ??= head;
                captureSeconds += capture;
                quantizeSeconds += quantize;
            }
        }
        finally
        {
            if (cache is not null)
                cache.CachedWeights = cached;
        }
        // This thread may have run another device's linears; the forward that follows is the first device's.
        backend.Cuda?.MakeCurrent();
        var tensors = outcomes.SelectMany(o => o.Tensors).ToList();
        var records = outcomes.Where(o => o.Record is not null).Select(o => o.Record!).ToList();
        var warnings = outcomes.Where(o => o.Warning is not null).Select(o => o.Warning!).ToList();
        tensors.AddRange(module.TensorNames.Where(n => !module.Linears.Any(l => l.SourceTensors.Contains(n))).Select(CopySourceTensor));

        var clock = Stopwatch.StartNew();
        double forwardStart = timeline?.Now ?? 0;
        double uploadedBefore = WeightUploadSeconds;
        var diff = new ModuleDiff();
        // With the original stream at hand, also the error against what the original model computes (its stream has
        // advanced through this module already): the quantity the drift target minimizes, drift included.
        var againstOriginal = original is null ? null : new ModuleDiff();
        var final = stash is null ? null : new StashRun(stash, StashRun.Final);
        if (module is LmHeadModule quantizedHead)
        {
            HeadComparison.Add(backend.Blocks ?? HostForwardPass.Instance, quantizedHead, originalHead!, state, original, referenceRows, diff, againstOriginal);
        }
        else
        {
            // Row by row as the chunks come; the original stream's rows through one buffer (a fresh matrix per row
            // first-touched its pages).
            float[]? originalRow = null;
            state.ForwardChunks(module, referenceRows, (start, outputs) =>
            {
                for (int i = 0; i < outputs.Rows / state.Tokens; i++)
                {
                    diff.AddRow(outputs.RowMemory(i * state.Tokens, state.Tokens), reference!.RowMemory((start + i) * state.Tokens, state.Tokens), reference.Cols);
                    if (againstOriginal is not null)
                    {
                        originalRow ??= GC.AllocateUninitializedArray<float>(state.Tokens * outputs.Cols);
                        original!.ReadRow(referenceRows[start + i], originalRow);
                        againstOriginal.AddRow(outputs.RowMemory(i * state.Tokens, state.Tokens), originalRow, outputs.Cols);
                    }
                }
            }, final);
        }
        if (againstOriginal is not null)
            Log(progress, $"  {module.Name}: against the original model's stream: rfn {againstOriginal.RfnErr:F5}  cos_err {againstOriginal.CosErr:E2}  sqnr {againstOriginal.Sqnr:F2} dB");
        IReadOnlyList<int> dropped = [];
        if (!isHead)
            dropped = state.Advance(module, final);
        double forwardSeconds = clock.Elapsed.TotalSeconds;
        timeline?.Add($"{module.Name} forward", "module", forwardStart, forwardSeconds);
        AddWeightUploads(module.Name + " forward", forwardStart, uploadedBefore);
        warnings.AddRange(DroppedWarnings(module, dropped));

        var metrics = new ModuleRecord(names.Written(module.Name), diff.RfnErr, diff.CosErr, diff.Sqnr, diff.MaxDiffNorm, captureSeconds, quantizeSeconds, forwardSeconds);
        return new Result(tensors, records, metrics, warnings);
    }

    /// <summary>
    /// The groups one capture collects, in the order they are captured: all of the module's at once, or with
    /// <paramref name="sequential"/> (<see cref="QuantizerTuning.SequentialCapture"/>) a decoder block's one
    /// <see cref="LinearGroup.Sublayer"/> at a time. The resource estimate counts a module's memory by the same stages.
    /// </summary>
    internal static IReadOnlyList<IReadOnlyList<LinearGroup>> CaptureStages(ModelModule module, bool sequential) =>
        !sequential || module is not DecoderBlock
            ? [module.LinearGroups]
            : module.LinearGroups.GroupBy(g => g.Sublayer).OrderBy(g => g.Key).Select(g => (IReadOnlyList<LinearGroup>)g.ToList()).ToList();

    /// <summary>
    /// One capture and what it feeds: its groups, the reference rows whose outputs it keeps, whether the original stream
    /// advances in it (the last), and the module's original weights when some of its linears are reconstructions by now.
    /// </summary>
    /// <param name="Stash">The quantized stream's stage stash at this stage, or null; <paramref name="OriginalStash"/> the original stream's.</param>
    private sealed record CaptureStage(IReadOnlyList<LinearGroup> Groups, int KeepRows, bool Last, OriginalWeights? Originals, StashRun? Stash = null,
        StashRun? OriginalStash = null);

    /// <summary>
    /// Whether a sequential capture keeps stage stashes: on the host always (a row's copy costs less than recomputing
    /// its attention), on a GPU where the memory plan puts them beside both streams' states (<see cref="GpuMemoryPlan.KeepsStashes"/>).
    /// </summary>
    private bool StashesStages => settings.StageStash && (backend.Cuda is null || memory?.KeepsStashes == true);

    /// <summary>
    /// Captures the Hessians of <paramref name="stage"/>'s groups, then quantizes their linears into
    /// <paramref name="outcomes"/> (indexed as <paramref name="jobs"/>) and swaps in their reconstructions. Returns the
    /// kept reference outputs, the head's original weight, and the capture's and quantization's seconds.
    /// </summary>
    private (Matrix? Reference, Matrix? OriginalHead, double Capture, double Quantize) CaptureAndQuantize(ModelModule module, CaptureStage stage,
        CalibrationState state, CalibrationState? original, IReadOnlyList<int> good, IReadOnlyList<(LinearGroup Group, Linear Linear)> jobs,
        LinearOutcome[] outcomes, IStepProgress progress)
    {
        // Capture: the head's input is the state itself, so its Hessian needs no forward (and no logits).
        var clock = Stopwatch.StartNew();
        double captureStart = timeline?.Now ?? 0;
        double uploadedBefore = WeightUploadSeconds;
        var groups = stage.Groups.ToHashSet();
        using var capture = new HessianCapture(backend.Algebra, groups.Count == module.LinearGroups.Count ? null : groups);
        using var drift = original is null ? null : new DriftCapture(capture, backend.Algebra);
        Matrix? reference = null, originalHead = null;
        if (module is LmHeadModule head)
        {
            var group = module.LinearGroups[0];
            foreach (var chunk in good.Chunk(HeadCaptureRows))
            {
                // Both streams' rows are shown where they are held: on a GPU the original's stay there and its cross
                // sum pairs them on the device, as a decoder block's capture does. A host gather of the original's
                // sent the quantized stream's rows to the host too (the cross sum's pairing), 2 × 537 MB per chunk of
                // an 8B at 2048 tokens: the head's capture took 13.5 s at 250 × 2048 on an H100 (session 21).
                if (drift is not null)
                    original!.Observe(group, drift.Original, chunk, backend.Blocks);
                state.Observe(group, (ILinearInputObserver?)drift ?? capture, chunk, backend.Blocks);
            }
            // Its reference logits are computed after quantizing, a chunk at a time beside the quantized ones, from the
            // original weight kept here: all 5 rows of them at 2048 tokens and a 128k vocabulary are 5.3 GB (10.5 GB at
            // 4096 tokens, past what one .NET array holds), the weight 2.1 GB.
            originalHead = head.Projection.Weight;
        }
        else if (drift is not null)
        {
            reference = ForwardBothStreams(module, state, original!, good, drift, stage);
        }
        else
        {
            reference = state.Forward(module, good, capture, keepRows: stage.KeepRows, stage.Stash);
        }
        double captureSeconds = clock.Elapsed.TotalSeconds;
        timeline?.Add($"{module.Name} capture", "module", captureStart, captureSeconds);
        AddWeightUploads(module.Name + " capture", captureStart, uploadedBefore);

        clock.Restart();
        double quantizeStart = timeline?.Now ?? 0;
        var mine = Enumerable.Range(0, jobs.Count).Where(i => groups.Contains(jobs[i].Group)).ToList();
        // Largest first, and of equal sizes the widest input first (down_proj before gate/up: its k² Hessian takes
        // seconds of host work to finalize and rotate before its LDLQ can start): with several in flight the small
        // ones fill the gaps at the end instead of a large one running alone after them. The output keeps the
        // module's order.
        var order = mine
            .OrderByDescending(i => Work(jobs[i].Linear))
            .ThenByDescending(i => jobs[i].Linear.InFeatures)
            .ThenBy(i => i).ToArray();
        // Each group's Hessian is finalized by the first of its linears to start, so quantizing can begin before the
        // last group is ready; every linear only reads it. On a GPU the damped H stays on the device (its solver
        // rotates and factors it there); a lean run keeps there only the first linear's, when that linear is its
        // group's only one: its own factor then takes it, so it costs no device memory past that linear's working set.
        var onDevice = backend.Cuda is null ? []
            : !_lean ? groups
            : order.Length > 0 && jobs[order[0]].Group.Linears.Count == 1 ? [jobs[order[0]].Group] : new HashSet<LinearGroup>();
        var hessians = stage.Groups.ToDictionary(g => g, g => new Lazy<GroupHessian>(() => FinalizeHessian(g, capture, progress, onDevice.Contains(g))));
        using var releaseHessians = new LazyRelease<GroupHessian>(hessians.Values);
        // A group's drift correction is made from its finalized Hessian before the group's first linear quantizes (a
        // lone linear's GPU solver may take the device copy of H, after which no host copy comes down).
        var corrections = stage.Groups.ToDictionary(g => g, g => new Lazy<DriftCorrection?>(() => drift is null ? null : Correction(g, hessians[g].Value, drift, progress)));
        using var releaseCorrections = new LazyRelease<DriftCorrection?>(corrections.Values);
        if (_lean)
        {
            // The original weights the capture multiplied by leave the cache (the forward after quantizing runs on the
            // reconstructions), then every Gram sum leaves the device before the first LDL factor is made.
            foreach (var device in _devices?.Backends ?? [backend])
                (device.Algebra as Cuda.Blas.CudaDenseAlgebra)?.ReleaseWeights();
            foreach (var hessian in hessians.Values)
                _ = hessian.Value;
        }
        int inFlight = InFlight.InStage(LinearsInFlightFor(order.Length), order.Length,
            module is DecoderBlock && InFlight.WholeStages(settings.LinearsInFlight, backend.Cuda is not null, settings.Tuning.SequentialCapture, memory?.OneInFlight == true));
        // Each device takes its share in the same largest-first order, with its own linears in flight (one device:
        // all of them, on this thread's turn of InFlight).
        IReadOnlyList<double> speeds = _devices?.Speeds ?? [1.0];
        var work = order.Select(i => (double)Work(jobs[i].Linear)).ToList();
        var placed = LinearPlacement.Assign(work, speeds);
        // A stage that whole linears would leave unbalanced shares every linear's columns between the devices; each is
        // still prepared (scale search, factor) on the device placed.
        bool split = LinearPlacement.SplitColumns(work, speeds);
        InFlight.For(speeds.Count, speeds.Count, d =>
        {
            var onThis = Enumerable.Range(0, order.Length).Where(i => placed[i] == d).Select(i => order[i]).ToArray();
            InFlight.For(onThis.Length, inFlight, j => outcomes[onThis[j]] = QuantizeOne(module, jobs[onThis[j]].Group, jobs[onThis[j]].Linear, hessians[jobs[onThis[j]].Group], corrections[jobs[onThis[j]].Group], progress, d, split));
        });
        double quantizeSeconds = clock.Elapsed.TotalSeconds;
        timeline?.Add($"{module.Name} quantize", "module", quantizeStart, quantizeSeconds);
        return (reference, originalHead, captureSeconds, quantizeSeconds);
    }

    /// <summary>The forward backend's seconds of weight uploads so far (0 on the host).</summary>
    private double WeightUploadSeconds => (backend.Algebra as Cuda.Blas.CudaDenseAlgebra)?.WeightUploadSeconds ?? 0;

    /// <summary>The weight uploads of a capture or forward, as one span of their summed length at its start (they are spread through it).</summary>
    private void AddWeightUploads(string stage, double start, double uploadedBefore)
    {
        double seconds = WeightUploadSeconds - uploadedBefore;
        if (seconds > 0)
            timeline?.Add($"{stage} weight uploads", "uploads", start, seconds);
    }

    /// <summary>Disposes what a stage made per group (finalized Hessians, drift corrections: their device copies) when its linears are done.</summary>
    private sealed class LazyRelease<T>(IEnumerable<Lazy<T>> made) : IDisposable where T : IDisposable?
    {
        public void Dispose()
        {
            foreach (var value in made.Where(h => h.IsValueCreated))
                value.Value?.Dispose();
        }
    }

    /// <summary>What quantizing one linear adds to the module's result.</summary>
    private sealed record LinearOutcome(IReadOnlyList<PendingTensor> Tensors, TensorRecord? Record, string? Warning);

    /// <summary>Linears quantized at once in a module of <paramref name="linears"/> linears (<see cref="InFlight.Linears"/>).</summary>
    public int LinearsInFlightFor(int linears) =>
        memory?.OneInFlight == true && settings.LinearsInFlight == 0 ? 1 : InFlight.Linears(settings.LinearsInFlight, backend.Cuda is not null, linears);

    /// <summary>A group's Hessian from the rows captured so far, finalized as for quantization (damping, sign flips of its seed).</summary>
    /// <param name="onDevice">Leave the damped H on the GPU that summed it (<see cref="GroupHessian.Resident"/>).</param>
    public GroupHessian FinalizeHessian(LinearGroup group, HessianCapture capture, IStepProgress progress, bool onDevice = false)
    {
        var clock = Stopwatch.StartNew();
        double start = timeline?.Now ?? 0;
        var hessian = GroupHessian.Finalize(capture.For(group), LinearQuantizer.Pad(group.InFeatures), settings.Tuning.Damping,
            StableSeed.Rng(settings.Seed, group.ToString()), onDevice, group.Linears.Count);
        timeline?.Add($"{group} Hessian", "linear", start, clock.Elapsed.TotalSeconds);
        Log(progress, $"  {group}: Hessian of {hessian.Count} rows finalized ({clock.Elapsed.TotalSeconds:F1} s)");
        return hessian;
    }

    /// <summary>
    /// The capture of a decoder module with the drift target: chunk by chunk, the original stream runs through the
    /// module with its original weights while showing its groups' inputs to <paramref name="drift"/> (advancing, its
    /// states overwritten by its outputs, in the module's last capture), then the quantized stream's same rows run
    /// through it for the Hessians and cross sums. Returns the quantized stream's outputs of the stage's kept rows, as
    /// <see cref="CalibrationState.Forward"/>.
    /// </summary>
    private static Matrix ForwardBothStreams(ModelModule module, CalibrationState state, CalibrationState original, IReadOnlyList<int> rows, DriftCapture drift,
        CaptureStage stage)
    {
        var kept = new KeptRows(Math.Min(stage.KeepRows, rows.Count), state.Tokens);
        int chunkRows = CalibrationState.ChunkRows(state.Tokens);
        for (int start = 0; start < rows.Count; start += chunkRows)
        {
            var chunk = rows.Skip(start).Take(chunkRows).ToList();
            using (stage.Originals?.SwappedIn())
            {
                if (stage.Last)
                    original.Advance(module, chunk, drift.Original, stage.OriginalStash);
                else
                    original.Forward(module, chunk, drift.Original, keepRows: 0, stage.OriginalStash);
            }
            int keep = Math.Clamp(stage.KeepRows - start, 0, chunk.Count);
            kept.Take(start, state.Forward(module, chunk, drift, keepRows: keep, stage.Stash), keep);
        }
        return kept.Result;
    }

    /// <summary>A group's drift correction (<see cref="DriftCorrection.For"/>), logged with how much the streams differed.</summary>
    private DriftCorrection? Correction(LinearGroup group, GroupHessian hessian, DriftCapture drift, IStepProgress progress)
    {
        var clock = Stopwatch.StartNew();
        double start = timeline?.Now ?? 0;
        var cross = drift.For(group);
        backend.Cuda?.MakeCurrent();
        var correction = DriftCorrection.For(hessian, cross, settings.Tuning.DriftTarget, backend.Algebra);
        timeline?.Add($"{group} drift correction", "linear", start, clock.Elapsed.TotalSeconds);
        Log(progress, $"  {group}: drift target " + (correction is not null ? $"from {cross.Count} tokens{(correction.Projected ? $", its cross sum projected by the weights ({cross.Features} × {cross.Columns})" : "")} ({clock.Elapsed.TotalSeconds:F1} s)"
            : hessian.FallbackReason is not null ? "not applied (no Hessian)"
            : "not needed (both streams' inputs are the same)"));
        return correction;
    }

    /// <summary>A linear's work, for ordering the linears and placing them on devices: its padded weights (the tiles its searches encode).</summary>
    private static long Work(Linear linear) => (long)LinearQuantizer.Pad(linear.InFeatures) * LinearQuantizer.Pad(linear.OutFeatures);

    private LinearOutcome QuantizeOne(ModelModule module, LinearGroup group, Linear linear, Lazy<GroupHessian> hessian, Lazy<DriftCorrection?> correction, IStepProgress progress, int device,
        bool splitColumns)
    {
        int k = bits.TryGetValue(linear.Name, out var b) ? b : settings.HeadBits;
        if (k == 16)
            return new LinearOutcome([PendingTensor.FromFloat32(names.Written(TensorNames.Weight(linear.Name)), [linear.OutFeatures, linear.InFeatures], linear.Weight.Data, DType.F16)], null, null);
        var drift = correction.Value;
        // Makes the device's context current: a thread of the pool may last have driven another GPU (the correction's
        // Cholesky runs on the first).
        var quantizing = QuantizerFor(linear, k, device, splitColumns, WidestInput(module));
        double start = timeline?.Now ?? 0;
        bool isLarge = IsLarge(linear);
        var targetClock = Stopwatch.StartNew();
        // T = W + W·Gᵀ, transposed and padded where the quantizer holds W, which takes it over: made in place on a GPU
        // that holds W; T in the HF layout, kept through the quantizer's working set, was 2.1 GB more at an 8B's head,
        // where a GPU run's host memory peaks.
        var held = quantizing.Hold(linear, hessian.Value);
        double? shift = null;
        try
        {
            if (drift is not null)
                shift = drift.TargetInto(held, group.MemberOf(linear), linear.Weight.Data, linear.OutFeatures, Quantizer(device).Algebra, onDevice: MakesTargetOnDevice(linear));
        }
        catch
        {
            held.Dispose();
            throw;
        }
        // The target's HF copy is garbage now; a head-sized one is collected before the quantizer allocates its arrays
        // of the same size, which then reuse its memory.
        if (drift is not null && isLarge)
            HeapReuse.ReleaseFinishedStep();
        double targetSeconds = targetClock.Elapsed.TotalSeconds;
        var (q, stored, reconstructSeconds) = QuantizeLinear(linear, hessian.Value, device, quantizing, held);
        var packClock = Stopwatch.StartNew();
        var tensors = Exl3LinearWriter.Tensors(stored).ToList();
        timeline?.AddStages(q.Name, "linear", start, [("drift target", targetSeconds), ("regularize", q.RegularizeSeconds), ("search", q.ScaleSearchSeconds), ("factor", q.FactorSeconds),
            ("ldlq", q.LdlqSeconds), ("finish", q.FinishSeconds), ("reconstruct", reconstructSeconds), ("pack", packClock.Elapsed.TotalSeconds)]);
        double seconds = q.RegularizeSeconds + q.ScaleSearchSeconds + q.FactorSeconds + q.LdlqSeconds + q.FinishSeconds + reconstructSeconds;
        Log(progress, $"  {q.Name}: K={q.Bits} {(q.ProxyIsRmse ? "rmse" : "proxy_err")} {q.ProxyError:E3}  g {q.GlobalScale:F3}" +
            (_devices is { Count: > 1 } ? $"  on {Quantizer(device).Description}" + (splitColumns ? ", columns shared by every device" : "") : "") +
            (q.ProxyBeforeRefit is { } unrefit ? $"  refit from {unrefit:E3}" : "") +
            (shift is { } moved ? $"  drift target moved {moved:E2}" : "") +
            $"  ({seconds:F1} s: search {q.ScaleSearchSeconds:F1}, factor {q.FactorSeconds:F1}, ldlq {q.LdlqSeconds:F1}, other {seconds - q.ScaleSearchSeconds - q.FactorSeconds - q.LdlqSeconds:F1})" +
            (q.Fallback is null ? "" : "  FALLBACK: " + q.Fallback) + (isLarge ? $"  host peak {HumanFormat.Bytes(MachineResources.PeakResidentBytes())}" : ""));
        var outcome = new LinearOutcome(tensors, Record(module, q, reconstructSeconds),
            q.Fallback is null ? null : $"{q.Name}: quantized without error feedback: {q.Fallback}");
        HeapReuse.ReleaseFinishedStep();
        return outcome;
    }

    /// <summary>
    /// Whether a GPU run makes the linear's drift target on the device (<see cref="DriftCorrection.TransposedTarget"/>): all
    /// but a head-sized one, whose padded T would be 2.1 GB more on the device (an 8B's head) beside the product's two
    /// operands, in the module whose comparison already sets the GPU peak; its host path costs ~1 s once a run.
    /// </summary>
    internal static bool MakesTargetOnDevice(Linear linear) => !IsLarge(linear);

    /// <summary>
    /// Whether a GPU holds the linear's W and regularized target in its memory while quantizing it
    /// (<see cref="LinearQuantizerSettings.TargetOnDevice"/>, 8 bytes a weight more there): not for a head-sized linear
    /// (4.2 GB more at an 8B's head, whose module sets the GPU peak), nor, where the memory plan says so
    /// (<see cref="GpuMemoryPlan.HostTargets"/>), for its module's widest-input linears (<paramref name="widestInput"/>).
    /// </summary>
    public static bool HoldsTargetOnDevice(Linear linear, int widestInput, bool hostTargets) =>
        !IsLarge(linear) && !(hostTargets && linear.InFeatures >= widestInput);

    /// <summary>The widest input of <paramref name="module"/>'s linears (<see cref="HoldsTargetOnDevice"/>).</summary>
    public static int WidestInput(ModelModule module) => module.Linears.Select(l => l.InFeatures).DefaultIfEmpty(0).Max();

    /// <summary>A linear of at least this many weights (1 GiB in float32) has its garbage collected between quantizing and reconstructing.</summary>
    private const long LargeLinearElements = 1L << 28;

    private static bool IsLarge(Linear linear) => (long)linear.OutFeatures * linear.InFeatures >= LargeLinearElements;

    /// <summary>Log lines of linears in flight at once come from several threads; each line stays whole.</summary>
    private void Log(IStepProgress progress, string line)
    {
        lock (_logGate)
            progress.Log(line);
    }

    /// <summary>
    /// Quantizes one linear and swaps its reconstruction in; returns the result, the EXL3 linear to write (under the
    /// output's name) and the seconds the reconstruction took.
    /// </summary>
    private (QuantizedLinear, Exl3Linear, double) QuantizeLinear(Linear linear, GroupHessian hessian, int device, Quantizing quantizing, LinearTarget held)
    {
        var q = QuantizeHeld(linear, hessian, quantizing, held, reconstructWhereHeld: true);
        // A head-sized linear leaves four weight-sized arrays of garbage (the transposed and regularized weights, Q,
        // the states: 7 GB at an 8B's 128k-vocabulary head) that no collection has yet reclaimed when the
        // reconstruction allocates two more; collecting here lets those reuse the memory. Smaller linears skip it:
        // a forced full collection per linear would cost more than it saves.
        if (IsLarge(linear))
            HeapReuse.ReleaseFinishedStep();
        // Later modules must see what the quantized model computes: swap in the reconstruction (§4.3), made from LDLQ's
        // Q (the decoded trellis) in place; the result keeps no reference to it.
        var (decoded, resident) = (q.Decoded, q.Resident);
        using var heldResident = resident;
        q = q with { Decoded = null, Resident = null };
        var stored = ToExl3(q);
        var clock = Stopwatch.StartNew();
        // The forward that follows multiplies by it on the first device: a reconstruction made there stays as the
        // cache's copy, any other goes up now beside the other linears' work. A lean plan leaves the cache to the
        // forward (its bytes are capped at one module's weights).
        bool cached = !_lean && ReferenceEquals(Quantizer(device), backend);
        if (resident is not null)
        {
            // Q's host copy, where a step brought it down (a lean plan's proxy traces), is not read again: the weight comes
            // down into it where no padding makes the sizes differ; else into an array of the pinned-object heap, where
            // the previous layer's dead reconstructions of the same shape leave room (WeightArrays).
            var weight = decoded is { } spare && spare.LongLength == (long)linear.OutFeatures * linear.InFeatures
                ? spare
                : WeightArrays.Uninitialized(ArrayLength.Of(linear.OutFeatures, linear.InFeatures, "weight"));
            resident.CopyTo(weight);
            linear.ReplaceWeight(new Matrix(linear.OutFeatures, linear.InFeatures, weight));
            if (cached && resident is Cuda.Blas.CudaResidentWeight here && here.Algebra == backend.Algebra)
                resident.KeepAsCopyOf(weight);
        }
        else
        {
            linear.ReplaceWeight(decoded is null ? Reconstruct(stored, linear) : FromDecoded(decoded, q, linear));
            if (cached)
                (backend.Algebra as Cuda.Blas.CudaDenseAlgebra)?.Preload(linear.Weight.Data);
        }
        return (q, stored, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// What quantizing <paramref name="linear"/> at K = <paramref name="k"/> on device <paramref name="device"/> of the
    /// set (0: the converter's backend) gives, without touching its weight.
    /// </summary>
    /// <param name="splitColumns">LDLQ's columns shared by every device of the set (<see cref="ColumnSplitSolver"/>), the rest on <paramref name="device"/>.</param>
    public QuantizedLinear QuantizeAt(Linear linear, GroupHessian hessian, int k, int device = 0, bool splitColumns = false)
    {
        var quantizing = QuantizerFor(linear, k, device, splitColumns, widestInput: linear.InFeatures);
        return QuantizeHeld(linear, hessian, quantizing, quantizing.Hold(linear, hessian));
    }

    /// <summary>
    /// <see cref="QuantizeAt"/> with <paramref name="held"/> (<see cref="Quantizing.Hold"/>), taken over: loaded with the
    /// drift-aware target, or empty, for the weight.
    /// </summary>
    private QuantizedLinear QuantizeHeld(Linear linear, GroupHessian hessian, Quantizing quantizing, LinearTarget held, bool reconstructWhereHeld = false)
    {
        var transposeClock = Stopwatch.StartNew();
        try
        {
            if (!held.Loaded)
            {
                held.Load(LinearQuantizer.TransposePadded(linear.Weight.Data, linear.OutFeatures, linear.InFeatures, LinearQuantizer.Pad(linear.InFeatures),
                    LinearQuantizer.Pad(linear.OutFeatures)));
            }
        }
        catch
        {
            held.Dispose();
            throw;
        }
        double transposeSeconds = transposeClock.Elapsed.TotalSeconds;
        var q = LinearQuantizer.QuantizeHeld(linear.Name, held, linear.OutFeatures, linear.InFeatures, linear.Bias is null ? null : PadBias(linear.Bias, LinearQuantizer.Pad(linear.OutFeatures)),
            hessian, quantizing.Table, quantizing.Encoder, quantizing.Settings, StableSeed.Rng(settings.Seed, linear.Name), reconstructWhereHeld);
        return q with { RegularizeSeconds = q.RegularizeSeconds + transposeSeconds };
    }

    /// <summary>The quantizer's settings, encoder and codebook for one linear, made once for both its holding and its quantizing.</summary>
    private sealed record Quantizing(LinearQuantizerSettings Settings, ITileEncoder Encoder, CodebookTable Table)
    {
        /// <summary>An empty place for the linear's transposed weight or drift target where the quantizer will hold it (<see cref="LinearQuantizer.Hold"/>).</summary>
        public LinearTarget Hold(Linear linear, GroupHessian hessian) =>
            LinearQuantizer.Hold(LinearQuantizer.Pad(linear.InFeatures), LinearQuantizer.Pad(linear.OutFeatures), hessian, Encoder, Settings);
    }

    /// <summary>
    /// The quantizer for <paramref name="linear"/> at K = <paramref name="k"/> on device <paramref name="device"/> of
    /// the set; makes that device's context current. <paramref name="widestInput"/>: the widest input of the linear's
    /// module (<see cref="HoldsTargetOnDevice"/>).
    /// </summary>
    private Quantizing QuantizerFor(Linear linear, int k, int device, bool splitColumns, int widestInput)
    {
        var quantizer = Quantizer(device);
        // A thread of the pool may last have driven another GPU.
        quantizer.Cuda?.MakeCurrent();
        var table = codebooks.Get(settings.Codebook);
        var ldlq = splitColumns && _devices is { Count: > 1 } devices
            ? new ColumnSplitSolver(devices.Backends.Select((b, d) => new ColumnSplitDevice(b.Ldlq, bits => Encoder(d, bits, table), () => b.Cuda?.MakeCurrent(), devices.Speeds[d])).ToList(), device)
            : quantizer.Ldlq;
        var quantizerSettings = new LinearQuantizerSettings(settings.OutScales, settings.HessianBasis, settings.Tuning.Damping, Threads(device))
        {
            Algebra = quantizer.Algebra,
            Ldlq = ldlq,
            Tuning = settings.Tuning,
            TargetOnDevice = HoldsTargetOnDevice(linear, widestInput, _hostTargets),
        };
        return new Quantizing(quantizerSettings, Encoder(device, k, table), table);
    }

    /// <summary>Device <paramref name="device"/>'s encoder at K = <paramref name="k"/> over the run's codebook, made once.</summary>
    private ITileEncoder Encoder(int device, int k, CodebookTable table)
    {
        lock (_encoders)
        {
            if (!_encoders.TryGetValue((device, k), out var encoder))
                _encoders[(device, k)] = encoder = Quantizer(device).CreateEncoder(table.Memory, k, Threads(device));
            return encoder;
        }
    }

    private ComputeBackend Quantizer(int device) => device == 0 ? backend : _devices!.Backends[device];

    /// <summary>CPU encoder threads of device <paramref name="device"/> (its share when cpu is listed more than once).</summary>
    private int Threads(int device) => _devices?.CpuThreads[device] ?? settings.Threads;

    /// <summary>
    /// The weight (out, in) the quantized model computes with: what is written, decoded as inspect and eval decode it
    /// (§4.3); from a copy of LDLQ's Q where <paramref name="q"/> keeps it (the same bits, without unpacking the trellis).
    /// </summary>
    public Matrix Reconstruct(QuantizedLinear q, Linear linear) =>
        q.Decoded is { } decoded ? FromDecoded((float[])decoded.Clone(), q, linear) : Reconstruct(ToExl3(q), linear);

    private Matrix Reconstruct(Exl3Linear stored, Linear linear) =>
        new(linear.OutFeatures, linear.InFeatures, Exl3Reconstruction.HfWeight(stored, codebooks, linear.OutFeatures, linear.InFeatures));

    /// <summary>The reconstruction from LDLQ's Q (<see cref="QuantizedLinear.Decoded"/>), rotated in place: the weights decoding the stored trellis gives.</summary>
    private static Matrix FromDecoded(float[] decoded, QuantizedLinear q, Linear linear) =>
        new(linear.OutFeatures, linear.InFeatures, LinearReconstruction.ToHfLayout(
            LinearReconstruction.FromDecoded(decoded, q.PaddedIn, q.PaddedOut, q.Suh, q.Svh), q.PaddedIn, q.PaddedOut, linear.OutFeatures, inFeatures: linear.InFeatures));

    /// <summary>Biases are stored fp16 and padded like the output dimension (exllamav3 pads them on load).</summary>
    private static float[] PadBias(float[] bias, int n)
    {
        var padded = new float[n];
        bias.CopyTo(padded, 0);
        return padded;
    }

    private Exl3Linear ToExl3(QuantizedLinear q) =>
        new(names.Written(q.Name), q.Trellis, q.PaddedIn, q.PaddedOut, q.Bits, q.Suh, q.Svh, q.Codebook, q.Bias?.Select(v => (float)(Half)v).ToArray());

    private TensorRecord Record(ModelModule module, QuantizedLinear q, double reconstructSeconds) => new(names.Written(q.Name), names.Written(module.Name), q.Bits, q.Codebook.Name,
        q.Codebook.MultiplierHex, q.InFeatures, q.OutFeatures, q.PaddedIn, q.PaddedOut, q.ProxyError, q.ProxyIsRmse, q.GlobalScale,
        q.OutScalesApplied, q.Fallback, q.CholeskyRetries, q.ScaleSearchSeconds, q.LdlqSeconds, q.RegularizeSeconds, q.FactorSeconds, q.FinishSeconds, reconstructSeconds);

    /// <summary>Embeddings and norms keep their source dtype, except fp32 which becomes fp16 (§4.2).</summary>
    private PendingTensor CopySourceTensor(string name)
    {
        var info = source.Info(name);
        if (info.DType == DType.F32)
            return PendingTensor.FromFloat32(names.Written(name), info.Shape, source.ReadFloat32(name), DType.F16);
        return PendingTensor.CopyOf(source, name, names.Written(name));
    }

    private static IReadOnlyList<string> DroppedWarnings(ModelModule module, IReadOnlyList<int> dropped) =>
        dropped.Count == 0 ? [] : [$"{module.Name}: dropped calibration rows {string.Join(", ", dropped)} (non-finite hidden states)"];
}
