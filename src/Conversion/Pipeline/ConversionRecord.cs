namespace Converter.Conversion.Pipeline;

/// <summary>What the converter logged about one tensor (the sidecar's and inspect's per-tensor row).</summary>
public sealed record TensorRecord(
    string Name,
    string Module,
    int Bits,
    string Codebook,
    string Multiplier,
    int InFeatures,
    int OutFeatures,
    int PaddedIn,
    int PaddedOut,
    double ProxyErr,
    bool ProxyIsRmse,
    double GlobalScale,
    bool OutScales,
    string? Fallback,
    int CholeskyRetries,
    double ScaleSearchSeconds,
    double LdlqSeconds,
    double RegularizeSeconds = 0,
    double FactorSeconds = 0,
    double FinishSeconds = 0,
    double ReconstructSeconds = 0);

/// <summary>Per-module error after quantization on the reference rows (§5.2 step 5.6) and where the time went.</summary>
/// <remarks>The error metrics are null for modules that are only copied (embedding, final norm).</remarks>
public sealed record ModuleRecord(
    string Name,
    double? RfnErr,
    double? CosErr,
    double? Sqnr,
    double? MaxDiffNorm,
    double CaptureSeconds,
    double QuantizeSeconds,
    double ForwardSeconds);

/// <summary>
/// The job's progress as saved in every checkpoint: the next module to run plus everything recorded so far, so a
/// resumed run writes the same report as an uninterrupted one.
/// </summary>
public sealed record JobProgress(
    int NextModule,
    IReadOnlyDictionary<string, string> Settings,
    IReadOnlyList<TensorRecord> Tensors,
    IReadOnlyList<ModuleRecord> Modules,
    IReadOnlyList<string> Warnings);
