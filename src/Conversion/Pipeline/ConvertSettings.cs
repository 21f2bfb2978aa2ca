using Converter.Conversion.Calibration;
using Converter.Cuda.Blas;
using Converter.Formats.HuggingFace;
using Converter.Regularize.Quantization;
using Converter.Trellis.Codebooks;

namespace Converter.Conversion.Pipeline;

/// <summary>Everything a conversion needs to know, bound and validated from the command line.</summary>
public sealed record ConvertSettings
{
    public required string ModelDir { get; init; }
    public required string OutDir { get; init; }
    public required string WorkDir { get; init; }
    public required double Bits { get; init; }

    /// <summary>K of lm_head, 1..8, or 16 to keep it in fp16 (§4.2).</summary>
    public int HeadBits { get; init; } = 6;

    public CodebookSpec Codebook { get; init; } = CodebookSpec.Default(CodebookKind.Mul1);

    /// <summary>Calibration rows as given on the command line; null until <see cref="ForModel"/> scales it to the model (<see cref="CalibrationVolume"/>).</summary>
    public int? CalRows { get; init; }

    /// <summary>Tokens per calibration row as given; null until <see cref="ForModel"/>.</summary>
    public int? CalCols { get; init; }

    /// <summary>How the volume was chosen ("model", "given", "model+given"), set by <see cref="ForModel"/>.</summary>
    public string? CalVolumeRule { get; init; }

    public CalibrationSource CalData { get; init; } = CalibrationSource.BuiltIn;
    public OutScalesMode OutScales { get; init; } = OutScalesMode.Always;
    public HessianBasis HessianBasis { get; init; } = HessianBasis.Exact;

    /// <summary>The quantizer's knobs (scale choice, refinement, scale refit, damping, drift target, sequential capture); default: the sequential drift target (<see cref="QuantizerTuning.Default"/>).</summary>
    public QuantizerTuning Tuning { get; init; } = QuantizerTuning.Default;

    /// <summary>
    /// The quantizer's drift target and capture were asked for (--drift-target, --sequential or --fast), so they stay
    /// even where they do not fit; left to the default, a job whose drift target does not fit runs with exllamav3's
    /// quantizer instead (<see cref="ResourceCheck.Choose"/>).
    /// </summary>
    public bool QuantizerChosen { get; init; }
    public int Seed { get; init; }
    public long ShardBytes { get; init; } = 8192L << 20;
    public bool Resume { get; init; }
    public bool Overwrite { get; init; }
    public int Threads { get; init; }

    /// <summary>Linears of a module quantized at once; 0 lets the backend choose (2 on a GPU, 1 on the CPU). Results do not depend on it.</summary>
    public int LinearsInFlight { get; init; }

    /// <summary>
    /// A sequential capture keeps each stream's activations at a block's stage boundaries instead of recomputing them
    /// from the block's input (<see cref="Models.Forward.StageStash"/>; on a GPU where the memory plan allows). Results
    /// do not depend on it: off only to show that.
    /// </summary>
    public bool StageStash { get; init; } = true;

    /// <summary>A Chrome trace-event file of where the time went (<see cref="Reporting.ConversionTimeline"/>); null: none. Not fixed on resume.</summary>
    public string? TimelinePath { get; init; }

    /// <summary>With <see cref="TimelinePath"/> on a CUDA device: every kernel, copy and driver call in the timeline too (CUPTI). Not fixed on resume.</summary>
    public bool TimelineGpu { get; init; }

    /// <summary>auto, cpu or cuda:N (<see cref="ComputeBackend.Open"/>). Not fixed on resume: a job may continue on another device.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>
    /// The arithmetic of the GPU calibration forward's activation products (<see cref="Cuda.Blas.GpuMath"/>); the CPU
    /// always computes in FP32. Never the Hessian sums, proxy errors or LDLQ. TF32 by default: on an H200 it made a
    /// llama-3-8b layer's forward over 250 × 2048 tokens 3.4× faster (9.99 → 2.97 s, capture 12.4 → 8.2 s) and left
    /// tiny-llama's 4-bpw KL where FP32 put it (0.01762 against 0.01761; docs/benchmarks.md "GPU forward").
    /// </summary>
    public GpuMath GpuMath { get; init; } = GpuMath.Tf32;

    /// <summary>
    /// The arithmetic of the products the GPU capture's Gram sums add up (<see cref="Cuda.Blas.GpuMath"/>; the sums are
    /// float64 either way, and the CPU's are FP32 products). FP32 by default until tf32's KL is measured against it.
    /// </summary>
    public GpuMath HessianMath { get; init; } = GpuMath.Fp32;

    /// <summary>
    /// Where the calibration states live on a GPU run (<see cref="StatePlacement"/>); auto puts them on the GPU when the
    /// estimate says they fit beside the rest. Not fixed on resume: the placement never changes a number.
    /// </summary>
    public StatePlacement CalibrationStates { get; init; } = StatePlacement.Auto;

    /// <summary>
    /// The GPU memory the job may plan on (<c>--gpu-memory</c>), or null for all that is free: the resource check refuses
    /// a job whose estimate passes it and auto keeps the calibration states on the host when they would. It bounds the
    /// plan, not the allocator (on the one whole job checked, a 2-layer 8B at 250 × 2048, the estimate was 22.6 GiB
    /// and nvidia-smi's peak 22.3 GiB, docs/benchmarks.md).
    /// </summary>
    public long? GpuMemoryBudgetBytes { get; init; }
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Runs a job even when the memory and disk estimate says it will not fit (<see cref="ResourceCheck"/>).</summary>
    public bool SkipResourceCheck { get; init; }

    /// <summary>A `trellis measure` file: allocate K per tensor by measured KL instead of uniformly (<see cref="Allocation.MeasuredAllocation"/>).</summary>
    public string? MeasurementPath { get; init; }

    /// <summary>With a measurement: also convert the uniform allocation and ship whichever does better on held-out rows (<see cref="Allocation.AllocationCheck"/>).</summary>
    public bool CheckAllocation { get; init; } = true;

    /// <summary>Debug/testing: stop (as if killed) after this many modules are done; null runs to the end.</summary>
    public int? StopAfterModules { get; init; }

    /// <summary>The settings with the calibration volume settled for the model: what the command line left out, scaled by <see cref="CalibrationVolume"/>.</summary>
    public ConvertSettings ForModel(ModelConfig config)
    {
        var volume = CalibrationVolume.Choose(CalRows, CalCols, config);
        return this with { CalRows = volume.Rows, CalCols = volume.Cols, CalVolumeRule = CalVolumeRule ?? volume.Rule };
    }

    /// <summary>The settled volume; only after <see cref="ForModel"/>.</summary>
    public CalibrationVolumeChoice CalVolume => CalRows is { } rows && CalCols is { } cols && CalVolumeRule is { } rule
        ? new CalibrationVolumeChoice(rows, cols, rule)
        : throw new InvalidOperationException("the calibration volume is settled for a model first (ConvertSettings.ForModel)");

    /// <summary>
    /// The settings a resumed job must share with the interrupted one: changing any of them would mix two
    /// different conversions in one output (exllamav3 fixes the same set, §5.1, plus what our determinism needs).
    /// </summary>
    public IReadOnlyDictionary<string, string> FixedOnResume()
    {
        var fixedSettings = FixedWithoutAllocation();
        // Only when not the default (FP32 since TF32 became it), so that jobs interrupted before this key existed
        // resume; a job cannot be continued with the other math (the calibration states it carries are its math's).
        if (GpuMath != GpuMath.Tf32)
            fixedSettings["gpu_math"] = Cuda.Models.GpuForwardOptions.Name(GpuMath);
        // Only when not the default, so that jobs interrupted before this key existed resume.
        if (HessianMath != GpuMath.Fp32)
            fixedSettings["hessian_math"] = Cuda.Models.GpuForwardOptions.Name(HessianMath);
        // Only when not the default, so that jobs interrupted before these keys existed still resume.
        foreach (var (key, value) in Tuning.Describe())
            fixedSettings[key] = value;
        // Only with a measurement, so that jobs interrupted before this key existed still resume.
        if (MeasurementPath is not null)
            fixedSettings["allocation"] = "measured:" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(MeasurementPath)))[..16];
        return fixedSettings;
    }

    /// <summary>
    /// The first setting in which the job <paramref name="saved"/> describes (its <see cref="FixedOnResume"/> as
    /// recorded) differs from these settings, or null when they agree: <c>Was</c> is null where the job had no such
    /// key, <c>Now</c> is null where these settings leave out a key the job had (it went back to its default, since
    /// some keys are recorded only when not the default). Resuming and reusing a finished conversion both ask this.
    /// </summary>
    public (string Key, string? Was, string? Now)? ResumeConflict(IReadOnlyDictionary<string, string> saved) => FirstDifference(FixedOnResume(), saved);

    /// <summary>The first key in which <paramref name="current"/> and <paramref name="saved"/> differ (see <see cref="ResumeConflict"/>), or null.</summary>
    public static (string Key, string? Was, string? Now)? FirstDifference(IReadOnlyDictionary<string, string> current, IReadOnlyDictionary<string, string> saved)
    {
        foreach (var (key, value) in current)
        {
            if (!saved.TryGetValue(key, out var was) || was != value)
                return (key, was, value);
        }
        foreach (var (key, was) in saved)
        {
            if (!current.ContainsKey(key))
                return (key, was, null);
        }
        return null;
    }

    private SortedDictionary<string, string> FixedWithoutAllocation() => new()
    {
        ["bits"] = Bits.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        ["head_bits"] = HeadBits.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["codebook"] = Codebook.ToString(),
        ["cal_rows"] = CalVolume.Rows.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["cal_cols"] = CalVolume.Cols.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["cal_data"] = CalData.Name,
        ["out_scales"] = OutScales.ToString(),
        ["hessian_basis"] = HessianBasis.ToString(),
        ["seed"] = Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["model"] = Path.GetFullPath(ModelDir),
    };
}
