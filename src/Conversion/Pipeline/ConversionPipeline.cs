using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Converter.Conversion.Calibration;
using Converter.Conversion.Pipeline.Allocation;
using Converter.Conversion.Reporting;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Formats.HuggingFace;
using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.Formats.Tokenizers;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Regularize.Quantization;
using Converter.Trellis.Codebooks;

namespace Converter.Conversion.Pipeline;

/// <summary>Summary of a finished conversion, also the `convert --json` result.</summary>
public sealed record ConversionSummary(
    string OutDir,
    double Bits,
    double BitsWithScales,
    int HeadBits,
    string Codebook,
    string Multiplier,
    long OutputBytes,
    int Tensors,
    int Fallbacks,
    double Seconds,
    bool Completed,
    int CopiedTensors = 0);

/// <summary>
/// `trellis convert`: validate, prepare the work directory, allocate bits, build the calibration rows, run the
/// module loop with checkpoints, and compile the output (docs/exl3-format.md §5.2). Only one module's weights and the
/// calibration state are in memory at a time.
/// </summary>
public sealed class ConversionPipeline(ConvertSettings settings, ConversionSession session)
{
    /// <summary>Our format version in quantization_config; bump when what we write changes meaning.</summary>
    public const int FormatVersion = 1;

    /// <summary>The work directory's record of the settings a job started with (<see cref="ConvertSettings.FixedOnResume"/>).</summary>
    public const string ArgsFileName = "args.json";

    /// <summary>The exllamav3 version whose format and quantization_config keys this converter writes (the exllamav3 snapshot docs/exl3-format.md describes).</summary>
    public const string Exl3Version = "1.4.1";

    /// <summary>quantization_config key naming the calibration forward's math when it was not FP32 (TF32, a GPU's default).</summary>
    public const string ForwardMathConfigKey = "calibration_forward_math";

    /// <summary>quantization_config's record of the Gram sums' product math, written only when not FP32 (<c>--hessian-math</c>).</summary>
    public const string HessianMathConfigKey = "calibration_hessian_math";

    public static string ConverterVersion => "trellis-dotnet " + (typeof(ConversionPipeline).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    /// <summary>The measured allocation used, once <see cref="Run"/> has started; null for the uniform allocation.</summary>
    public AllocationPlan? Plan { get; private set; }

    /// <summary>
    /// Checks the model directory and its tokenizer and loads its config; the calibration volume the command line left
    /// out is scaled to the model, before anything reads it.
    /// </summary>
    public static (ConvertSettings Settings, ModelConfig Config) Settle(ConvertSettings requested)
    {
        if (!Directory.Exists(requested.ModelDir))
            throw new DirectoryNotFoundException($"{requested.ModelDir}: model directory not found");
        var config = ModelConfig.Load(requested.ModelDir);
        var tokenizerPath = Path.Combine(requested.ModelDir, "tokenizer.json");
        if (!File.Exists(tokenizerPath))
            throw new InvalidDataException($"{tokenizerPath}: missing tokenizer (needed to tokenize the calibration text)");
        return (requested.ForModel(config), config);
    }

    public ConversionSummary Run()
    {
        var clock = Stopwatch.StartNew();
        (settings, var config) = Settle(settings);
        // The device is settled before anything is written: an unusable --device cuda:N leaves no trace.
        using var devices = DeviceSet.Open(settings.Device, settings.Threads, session.Log, "convert", new GpuForwardOptions(settings.GpuMath, HessianMath: settings.HessianMath));
        var backend = devices.Primary;
        // An FP8 source reads dequantized (its block scales consumed, never copied to the output).
        using var source = SourceCheckpoint.Open(settings.ModelDir, config.Json);
        var model = TransformerModel.FromConfig(config, backend.Algebra, backend.Blocks);
        var targets = BitAllocation.Targets(model);
        // A measurement file is read before anything is written: one made for another model fails here.
        if (settings.MeasurementPath is { } measurementPath)
        {
            var measurement = Measurement.Load(measurementPath);
            measurement.RequireModel(settings.ModelDir, measurementPath);
            Plan = AllocationPlan.Measured(targets, measurement, settings.Bits, measurementPath);
            session.Log.WriteLine($"convert: measured allocation from {measurementPath} ({measurement.Units.Count} units, {measurement.Granularity.Name()} granularity): predicted KL {Plan.PredictedKl:E3} against {Plan.UniformPredictedKl:E3} uniform" +
                (Plan.SameAsUniform ? " (the same allocation)" : ""));
            bool refitsLaterSublayers = settings.Tuning.DriftTarget > 0 && settings.Tuning.SequentialCapture;
            if ((measurement.Compensation == MeasureCompensation.Block) != refitsLaterSublayers)
            {
                session.Log.WriteLine($"convert: warning: {measurementPath} was measured with --compensation {measurement.Compensation.ToString().ToLowerInvariant()}, made for " +
                    (measurement.Compensation == MeasureCompensation.Block ? "the default quantizer (the sequential drift target)" : "exllamav3's quantizer (--fast)") +
                    $"; this conversion's quantizer is {(refitsLaterSublayers ? "the sequential drift target" : "another")}, so the predictions are less exact " +
                    $"(trellis measure --compensation {(refitsLaterSublayers ? "block" : "none")} matches it)");
            }
        }
        var bits = Plan?.Bits ?? BitAllocation.Allocate(targets, settings.Bits);
        var codebooks = session.Codebooks;
        // Memory and disk are checked before anything is written too: a job that cannot fit fails now, not at a checkpoint hours in.
        var (memory, driftDropped) = ResourceCheck.Run(ResourceCheck.Inputs(settings, model.Spec, source, bits, n => InFlight.Linears(settings.LinearsInFlight, backend.Cuda is not null, n),
                backend.Cuda is { } gpu ? new GpuShape(gpu.Device.Multiprocessors) : null),
            settings, backend.Cuda?.MemoryInfo().Free, session.Log, enforce: !settings.SkipResourceCheck,
            devices.Backends.Skip(1).Where(b => b.Cuda is not null).Select(b => (b.Algebra.Device, (long)b.Cuda!.MemoryInfo().Free)).ToList());
        // Before anything reads the tuning: the resume keys, the capture stages, the original stream.
        if (driftDropped)
            settings = settings with { Tuning = QuantizerTuning.Exllamav3 };
        if (memory.Lean)
        {
            foreach (var device in devices.Backends)
                (device.Algebra as Cuda.Blas.CudaDenseAlgebra)?.RunLean(GpuMemoryPlan.WeightCacheBytes(model));
        }
        var timeline = settings.TimelinePath is null ? null : new ConversionTimeline();
        using var gcPauses = timeline is null ? null : GcPauseRecorder.Start(timeline);
        using var deviceRecorder = StartDeviceRecorder(settings, timeline, backend.Cuda is not null);
        var converter = new ModuleConverter(settings, source, model.Spec.Names, codebooks, bits, backend, devices, memory, timeline);
        var stateDevice = memory.StatesOnGpu ? backend.Blocks as IResidentForwardBackend : null;
        var originalDevice = memory.OriginalOnGpu ? stateDevice : null;
        // The calibration rows are built before anything is written, so that a malformed tokenizer.json or a missing
        // or short calibration text fails without leaving a work folder behind.
        var rows = settings.Resume ? null : BuildCalibration(config);
        var calibration = CalibrationRows.Record(settings.CalData, settings.ModelDir, settings.CalVolume, settings.Seed);
        session.Log.WriteLine($"convert: calibration {calibration.Describe()}{(settings.CalVolumeRule == "model" ? $" (scaled to hidden size {config.HiddenSize})" : "")}");
        PrepareDirectories();
        if (!settings.Codebook.IsDefaultMultiplier)
            session.Log.WriteLine($"convert: warning: {NonstandardMultiplier.Consequence(settings.Codebook)}; the output is marked as such");

        var checkpoint = new JobCheckpoint(settings.WorkDir);
        var (progress, state, original) = rows is null ? LoadResume(checkpoint, stateDevice, originalDevice) : StartNew(rows, stateDevice, originalDevice);
        using var heldState = state;
        using var heldOriginal = original;
        session.Log.WriteLine("convert: quantizer: " + DescribeQuantizer(settings.Tuning, original));
        var tensors = progress.Tensors.ToList();
        var modules = progress.Modules.ToList();
        var warnings = progress.Warnings.ToList();
        // Says where the LDLQ loop runs, so a log shows at once whether a GPU run kept it on the device.
        int dense = converter.LinearsInFlightFor(1), experts = converter.LinearsInFlightFor(InFlight.ManyLinears);
        session.Log.WriteLine($"convert: LDLQ on {backend.Ldlq.Device}, {dense} linear(s) in flight" +
            (model.Spec.Moe is not null && experts != dense ? $" ({experts} in modules of experts)" : ""));
        var lastCheckpoint = Stopwatch.StartNew();
        using var prefetch = new ModulePrefetch(source);
        using var writes = new ModuleWriteQueue();

        bool completed = session.Progress.Run("convert", model.Modules.Count, steps =>
        {
            for (int m = 0; m < progress.NextModule; m++)
                steps.Step($"{model.Modules[m].Name} (done before resume)");
            for (int m = progress.NextModule; m < model.Modules.Count; m++)
            {
                if (settings.StopAfterModules is { } stop && m >= stop)
                    return false;
                var module = model.Modules[m];
                steps.Step(module.Name);
                var pausedBefore = GC.GetTotalPauseDuration();
                long? faultsBefore = MachineResources.MinorPageFaults();
                backend.Cuda?.ResetPeak();
                var result = converter.Convert(module, state, steps, original, prefetch, m + 1 < model.Modules.Count ? model.Modules[m + 1] : null);
                int index = m;
                writes.Enqueue(() =>
                {
                    double writeStart = timeline?.Now ?? 0;
                    WriteModuleFile(index, module, result);
                    // The module's source weights were read once (and copied where passed through): their mapped pages
                    // leave the resident set, or a whole 8B's 15 GB of them stayed counted to the end.
                    source.ReleaseResidentPages();
                    timeline?.Add($"{module.Name} write", "module", writeStart, timeline.Now - writeStart);
                    // Behind the loop too: with --timeline-gpu the file reaches tens of MB (0.2 s a module on an 8B, session 30).
                    WriteTimeline(settings, timeline, deviceRecorder);
                });
                tensors.AddRange(result.Records);
                modules.Add(result.Metrics);
                warnings.AddRange(result.Warnings);
                foreach (var w in result.Warnings)
                    steps.Log("  warning: " + w);
                if (module.LinearGroups.Count > 0)
                {
                    var r = result.Metrics;
                    steps.Log($"{module.Name}: rfn {r.RfnErr:F5}  cos_err {r.CosErr:E2}  sqnr {r.Sqnr:F2} dB  " +
                        $"(capture {r.CaptureSeconds:F1} s, quantize {r.QuantizeSeconds:F1} s, forward {r.ForwardSeconds:F1} s)  host peak {HumanFormat.Bytes(MachineResources.PeakResidentBytes())}, " +
                        $"GC pauses {(GC.GetTotalPauseDuration() - pausedBefore).TotalSeconds:F2} s" +
                        (MachineResources.MinorPageFaults() - faultsBefore is { } faults ? $", {faults / 1e6:F2}M page faults" : "") +
                        (backend.Cuda is { } gpu ? $", GPU allocated peak {HumanFormat.Bytes(gpu.PeakAllocatedBytes)} ({HumanFormat.Bytes(gpu.AllocatedBytes)} held after" +
                            (backend.Algebra is Cuda.Blas.CudaDenseAlgebra algebra ? ": " + DescribeHeld(algebra) : "") + ")" : ""));
                }
                bool last = m == model.Modules.Count - 1;
                if (!last && (lastCheckpoint.Elapsed >= settings.CheckpointInterval || settings.StopAfterModules == m + 1))
                {
                    var saving = Stopwatch.StartNew();
                    // A checkpoint names the modules done, so their files must be on disk first.
                    writes.Drain();
                    long bytes = checkpoint.Save(new JobProgress(m + 1, settings.FixedOnResume(), tensors, modules, warnings), state, original);
                    steps.Log($"checkpoint after {module.Name}: {HumanFormat.Bytes(bytes)} of calibration state in {saving.Elapsed.TotalSeconds:F1} s");
                    lastCheckpoint.Restart();
                }
            }
            return true;
        });
        writes.Drain();
        WriteTimeline(settings, timeline, deviceRecorder);
        if (deviceRecorder?.Dropped is > 0 and var dropped)
            session.Log.WriteLine($"convert: warning: CUPTI dropped {dropped} GPU activity records; the timeline's GPU spans are incomplete");

        if (!completed)
        {
            session.Log.WriteLine($"convert: stopped after {settings.StopAfterModules} modules; continue with --resume");
            return new ConversionSummary(settings.OutDir, 0, 0, settings.HeadBits, settings.Codebook.Name, settings.Codebook.MultiplierHex, 0, tensors.Count, 0, clock.Elapsed.TotalSeconds, false);
        }

        double average = BitAllocation.AverageBits(targets, bits);
        var moduleFiles = Enumerable.Range(0, model.Modules.Count).Select(m => ModuleFile(m, model.Modules[m])).ToList();
        // Assembled beside the target (same file system, so the final move is a rename), never inside --work-dir.
        var assembled = Path.TrimEndingDirectorySeparator(Path.GetFullPath(settings.OutDir)) + ".partial";
        if (Directory.Exists(assembled))
            Directory.Delete(assembled, recursive: true);
        var copied = UnreadTensors(model, source);
        var result = OutputCompiler.Compile(settings.ModelDir, moduleFiles, copied, assembled, settings.ShardBytes, config.Json,
            QuantizationConfig(average, calibration, backend.ForwardMath, backend.HessianMath));
        var report = new ConversionReport(ConverterVersion, FormatVersion, settings.FixedOnResume(), average, tensors, modules, warnings, state.BadRows.ToList(),
            copied.Select(t => t.Name).ToList(), calibration.ToJson(), GpuForwardOptions.Name(backend.ForwardMath));
        AtomicFile.WriteAllText(Path.Combine(assembled, ConversionReport.FileName), JsonSerializer.Serialize(report, ConversionReport.JsonOptions));
        double withScales = BitsWithScales(targets.Select(t => t with { Name = model.Spec.Names.Written(t.Name) }).ToList(), tensors);
        // Written last, over any README.md copied from the source: the card describes this output, not the original.
        AtomicFile.WriteAllText(Path.Combine(assembled, ModelCard.FileName), ModelCard.Render(new ModelCardFacts(
            settings.ModelDir, BaseModelId.Find(settings.ModelDir, config.Json), config.ArchitectureNames.FirstOrDefault() ?? config.ModelType ?? "unknown",
            Math.Round(average, 2), withScales, settings.HeadBits, settings.Codebook, calibration.Source(), calibration.Rows, calibration.Cols, settings.Seed,
            ConverterVersion, Exl3Version, DateOnly.FromDateTime(DateTime.UtcNow), SourceLicense.Read(settings.ModelDir))));
        long bytes = result.Files.Sum(f => new FileInfo(Path.Combine(assembled, f)).Length);
        Publish(assembled);
        Directory.Delete(settings.WorkDir, recursive: true);
        return new ConversionSummary(settings.OutDir, Math.Round(average, 2), withScales, settings.HeadBits, settings.Codebook.Name, settings.Codebook.MultiplierHex,
            bytes, tensors.Count, tensors.Count(t => t.Fallback is not null), clock.Elapsed.TotalSeconds, true, copied.Count);
    }

    /// <summary>
    /// Refuses a non-empty output directory unless --overwrite. The old output is not touched here: the new model is
    /// assembled beside it and swapped in only when complete (<see cref="Publish"/>), so a failed run loses nothing.
    /// </summary>
    private void PrepareDirectories()
    {
        if (!settings.Resume && !settings.Overwrite && Directory.Exists(settings.OutDir) && Directory.EnumerateFileSystemEntries(settings.OutDir).Any())
            throw new IOException($"{settings.OutDir}: output directory is not empty (use --overwrite to replace it)");
        if (!settings.Resume && Directory.Exists(settings.WorkDir))
            Directory.Delete(settings.WorkDir, recursive: true);
        Directory.CreateDirectory(Path.Combine(settings.WorkDir, "qtensors"));
    }

    /// <summary>Moves the assembled model into place, replacing what was there only now that the new one is whole.</summary>
    private void Publish(string assembled)
    {
        var target = Path.GetFullPath(settings.OutDir);
        if (Directory.Exists(target))
        {
            var old = target + ".old-" + Guid.NewGuid().ToString("N")[..8];
            Directory.Move(target, old);
            Directory.Move(assembled, target);
            Directory.Delete(old, recursive: true);
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            Directory.Move(assembled, target);
        }
    }

    private IReadOnlyList<int[]> BuildCalibration(ModelConfig config) => BuildCalibrationRows(settings, config, session.Log);

    /// <summary>The calibration rows of <paramref name="settings"/> (its volume settled for the model), tokenized with the model's tokenizer and checked against its vocabulary.</summary>
    public static IReadOnlyList<int[]> BuildCalibrationRows(ConvertSettings settings, ModelConfig config, TextWriter log)
    {
        var tokenizer = Tokenizer.FromFile(Path.Combine(settings.ModelDir, "tokenizer.json"));
        var built = CalibrationRows.Build(settings.CalData, settings.ModelDir, tokenizer, config.VocabSize, settings.CalVolume, settings.Seed);
        foreach (var note in built.Notes)
            log.WriteLine("convert: calibration: " + note);
        if (built.Rows.SelectMany(r => r).Any(id => id >= config.VocabSize))
            throw new InvalidDataException($"{settings.ModelDir}: tokenizer produces ids beyond the model's vocab_size {config.VocabSize}");
        return built.Rows;
    }

    /// <summary>
    /// The log's line on the quantizer: exllamav3's as it is (--fast), or what differs from it, with where the drift
    /// target's original stream lives.
    /// </summary>
    private static string DescribeQuantizer(QuantizerTuning tuning, CalibrationState? original)
    {
        if (tuning == QuantizerTuning.Exllamav3)
            return "exllamav3's (--fast)";
        var parts = new List<string>();
        if (tuning.SequentialCapture)
            parts.Add("sequential capture");
        if (original is not null)
        {
            parts.Add($"drift target {tuning.DriftTarget.ToString(CultureInfo.InvariantCulture)}: the original model's stream is kept beside the quantized one " +
                $"(on the {(original.Placement == "host" ? "host" : "GPU")})");
        }
        parts.AddRange(tuning.Describe().Where(p => p.Key is not ("sequential_capture" or "drift_target")).Select(p => $"{p.Key} {p.Value}"));
        return string.Join("; ", parts);
    }

    /// <summary>
    /// A new job's progress and states: the quantized stream, and with the drift target the original model's stream of
    /// the same rows, on <paramref name="originalDevice"/> where the memory plan put it there (<see cref="GpuMemoryPlan.OriginalOnGpu"/>), else on the host.
    /// </summary>
    private (JobProgress, CalibrationState, CalibrationState?) StartNew(IReadOnlyList<int[]> rows, IResidentForwardBackend? stateDevice, IResidentForwardBackend? originalDevice)
    {
        AtomicFile.WriteAllText(Path.Combine(settings.WorkDir, ArgsFileName), JsonSerializer.Serialize(settings.FixedOnResume(), JsonOutput.Options));
        var original = settings.Tuning.DriftTarget != 0 ? new CalibrationState(rows, null, [], originalDevice) : null;
        return (new JobProgress(0, settings.FixedOnResume(), [], [], []), new CalibrationState(rows, null, [], stateDevice), original);
    }

    private (JobProgress, CalibrationState, CalibrationState?) LoadResume(JobCheckpoint checkpoint, IResidentForwardBackend? stateDevice, IResidentForwardBackend? originalDevice)
    {
        if (!checkpoint.Exists)
            throw new IOException($"{settings.WorkDir}: no checkpoint to resume from");
        var (progress, state, original) = checkpoint.Load(stateDevice, originalDevice);
        if (settings.ResumeConflict(progress.Settings) is (var key, var was, var now))
        {
            state.Dispose();
            original?.Dispose();
            throw new InvalidSettingsException($"--resume: {key} was {(was is null ? "not set" : $"'{was}'")} in the interrupted job, now {(now is null ? "the default" : $"'{now}'")}; " +
                "it cannot change on resume");
        }
        // The drift target is fixed on resume, so a job that has it saved its original stream with every checkpoint.
        if (settings.Tuning.DriftTarget != 0 && original is null)
        {
            state.Dispose();
            throw new InvalidDataException($"{checkpoint.Current}: the checkpoint has no original-model stream, which the drift target needs");
        }
        session.Log.WriteLine($"convert: resuming at module {progress.NextModule}");
        if (settings.Tuning.DriftTarget == 0)
            original?.Dispose();
        return (progress, state, settings.Tuning.DriftTarget != 0 ? original : null);
    }

    /// <summary>
    /// Source tensors that no module reads, copied unchanged under their written names, as exllamav3's converter copies a
    /// multimodal model's vision tower and projector: the output stays a complete model. Fused sources are read by the
    /// linears they hold and a tied head's duplicate of the embedding is left out (<see cref="TransformerModel.UnreadTensors"/>).
    /// </summary>
    private IReadOnlyList<PendingTensor> UnreadTensors(TransformerModel model, ITensorReader source)
    {
        var copied = model.UnreadTensors(source.TensorNames).Select(n => PendingTensor.CopyOf(source, n, model.Spec.Names.Written(n))).ToList();
        if (copied.Count > 0)
        {
            session.Log.WriteLine($"convert: copying {copied.Count} tensor(s) that no module reads unchanged ({HumanFormat.Bytes(copied.Sum(t => t.ByteLength))}): " +
                string.Join(", ", copied.Take(3).Select(t => t.Name)) + (copied.Count > 3 ? ", …" : ""));
        }
        return copied;
    }

    private string ModuleFile(int index, ModelModule module) =>
        Path.Combine(settings.WorkDir, "qtensors", $"{index:D4}-{module.Name}.safetensors");

    private void WriteModuleFile(int index, ModelModule module, ModuleConverter.Result result)
    {
        var writer = new SafetensorsWriter();
        foreach (var t in result.Tensors)
            writer.Add(t);
        writer.Write(ModuleFile(index, module));
    }

    private JsonObject QuantizationConfig(double averageBits, CalibrationRecord calibration, GpuMath forwardMath, GpuMath hessianMath)
    {
        var config = QuantizationConfigKeys(averageBits, calibration);
        // Only when not FP32, so that a CPU conversion's config (and an --gpu-math fp32 one's) stays as it was.
        if (forwardMath != GpuMath.Fp32)
            config[ForwardMathConfigKey] = GpuForwardOptions.Name(forwardMath);
        if (hessianMath != GpuMath.Fp32)
            config[HessianMathConfigKey] = GpuForwardOptions.Name(hessianMath);
        if (!settings.Codebook.IsDefaultMultiplier)
            config[NonstandardMultiplier.ConfigKey] = NonstandardMultiplier.ConfigMark(settings.Codebook);
        foreach (var (key, value) in settings.Tuning.Describe())
            config[key] = value;
        return config;
    }

    private JsonObject QuantizationConfigKeys(double averageBits, CalibrationRecord calibration) => new()
    {
        ["quant_method"] = "exl3",
        ["version"] = Exl3Version,
        ["bits"] = Math.Round(averageBits, 2),
        ["head_bits"] = settings.HeadBits,
        ["calibration"] = calibration.ToJson(),
        ["out_scales"] = settings.OutScales.ToString().ToLowerInvariant(),
        ["codebook"] = settings.Codebook.Name,
        ["format_version"] = FormatVersion,
        ["converter"] = ConverterVersion,
        ["codebook_multiplier"] = settings.Codebook.MultiplierHex,
        ["hessian_basis"] = settings.HessianBasis == Regularize.Quantization.HessianBasis.Exact ? "exact" : "sign",
        ["seed"] = settings.Seed,
    };

    /// <summary>Bits per weight of the budgeted tensors including the 16·(k+n) bits of suh/svh (§4.3).</summary>
    private static double BitsWithScales(IReadOnlyList<AllocationTarget> targets, IReadOnlyList<TensorRecord> tensors)
    {
        var budgeted = targets.Select(t => t.Name).ToHashSet();
        var rows = tensors.Where(t => budgeted.Contains(t.Name)).ToList();
        double numel = rows.Sum(t => (double)t.InFeatures * t.OutFeatures);
        double stored = rows.Sum(t => (double)t.PaddedIn * t.PaddedOut * t.Bits + 16.0 * (t.PaddedIn + t.PaddedOut));
        return numel == 0 ? 0 : Math.Round(stored / numel, 3, MidpointRounding.AwayFromZero);
    }

    /// <summary>
    /// CUPTI's recorder of the GPU's work for `--timeline-gpu`, on the timeline's clock; null without it, and (with a
    /// warning: the host spans are still worth having) where CUPTI is missing or refuses.
    /// </summary>
    private Cuda.CudaActivityRecorder? StartDeviceRecorder(ConvertSettings settings, ConversionTimeline? timeline, bool cuda)
    {
        if (!settings.TimelineGpu || timeline is null)
            return null;
        if (!cuda)
        {
            session.Log.WriteLine("convert: warning: --timeline-gpu records a CUDA device's work; this conversion runs on the CPU");
            return null;
        }
        try
        {
            return Cuda.CudaActivityRecorder.Start(timeline.Now);
        }
        catch (Exception e) when (e is Cuda.CudaException or DllNotFoundException or EntryPointNotFoundException)
        {
            session.Log.WriteLine($"convert: warning: --timeline-gpu: no GPU activity recorded: {e.Message}");
            return null;
        }
    }

    /// <summary>The timeline so far, with the GPU's work recorded since the last write.</summary>
    private static void WriteTimeline(ConvertSettings settings, ConversionTimeline? timeline, Cuda.CudaActivityRecorder? recorder)
    {
        if (timeline is null)
            return;
        if (recorder is not null)
        {
            timeline.AddDevice(recorder.Drain().Select(a => new ConversionTimeline.DeviceSpan(a.Name, a.Kind != Cuda.DeviceActivityKind.ApiCall,
                a.Thread, a.Start, a.End - a.Start, a.Correlation, a.Bytes)));
        }
        timeline.Write(settings.TimelinePath!);
    }

    /// <summary>The GPU memory the algebra keeps between modules, for the module line: its weight cache, its scratch and the scratch's largest roles.</summary>
    private static string DescribeHeld(Cuda.Blas.CudaDenseAlgebra algebra)
    {
        var (weights, weightBytes, scratchBytes, largest) = algebra.Held();
        return $"weight cache {weights} ({HumanFormat.Bytes(weightBytes)}), scratch {HumanFormat.Bytes(scratchBytes)}" +
            (largest.Count == 0 ? "" : $": {string.Join(", ", largest.Select(r => $"{r.Role} {HumanFormat.Bytes(r.Bytes)}"))}");
    }
}

/// <summary>The sidecar JSON written beside the model: what the converter did, per tensor and per module.</summary>
/// <param name="Calibration">What it calibrated on, as quantization_config.calibration (<see cref="CalibrationRecord"/>); absent in reports of older versions.</param>
/// <param name="CopiedTensors">Source tensors no module reads, copied unchanged, under their written names.</param>
/// <param name="ForwardMath">
/// The arithmetic of the calibration forward's activation products in the run that finished the job: fp32 (the CPU,
/// or a GPU with --gpu-math fp32) or tf32 (a GPU's default); absent in reports of older versions.
/// </param>
public sealed record ConversionReport(
    string Converter,
    int FormatVersion,
    IReadOnlyDictionary<string, string> Settings,
    double Bits,
    IReadOnlyList<TensorRecord> Tensors,
    IReadOnlyList<ModuleRecord> Modules,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<int> BadRows,
    IReadOnlyList<string> CopiedTensors,
    JsonObject? Calibration = null,
    string? ForwardMath = null)
{
    public const string FileName = "trellis-convert.json";

    public static JsonSerializerOptions JsonOptions => JsonOutput.Options;
}
