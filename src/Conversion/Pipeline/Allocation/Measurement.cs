using System.Text.Json;
using Converter.Conversion.Reporting;
using Converter.Formats.IO;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>
/// One allocation group of the measured model (<see cref="BitAllocation.Targets"/>: a layer's attention input, its
/// output, the MLP's input and output, or all routed experts) and the KL divergence of the model's output from the
/// original's when this group alone is quantized at each candidate K.
/// </summary>
/// <param name="Linears">The group's linears by source name; their K rises and falls together.</param>
/// <param name="Kl">Candidate K → mean KL(original ‖ model with this group at K) over the measurement rows.</param>
public sealed record MeasuredGroup(int Layer, string Group, long Numel, IReadOnlyList<string> Linears, IReadOnlyDictionary<int, double> Kl);

/// <summary>
/// What `trellis measure` writes and `trellis convert --measurement` reads: per allocation group and candidate K,
/// how much the output KL grows when that group alone is quantized (the sensitivity exllamav3's measure/optimize
/// estimates from per-layer error instead).
/// </summary>
public sealed record Measurement(
    string Format,
    int Version,
    string Model,
    string Fingerprint,
    string Architecture,
    int Layers,
    IReadOnlyList<int> Candidates,
    string Codebook,
    string CalData,
    int CalRows,
    int CalCols,
    int Seed,
    string Text,
    int Rows,
    int Length,
    IReadOnlyList<MeasuredGroup> Groups,
    double Seconds)
{
    public const string FormatName = "trellis-measurement";

    public const int CurrentVersion = 1;

    /// <summary>Refuses a measurement made on another model (<see cref="ModelFingerprint"/>): its sensitivities say nothing about this one.</summary>
    public void RequireModel(string modelDir, string path)
    {
        var actual = ModelFingerprint.Compute(modelDir);
        if (actual != Fingerprint)
            throw new InvalidDataException($"{path}: measured on another model ({Model}, fingerprint {Fingerprint}); {modelDir} has fingerprint {actual}");
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, JsonOutput.Options));

    /// <summary>Reads and checks a measurement file; every problem is one line naming the file.</summary>
    public static Measurement Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: measurement file not found");
        Measurement? m;
        try
        {
            m = JsonSerializer.Deserialize<Measurement>(File.ReadAllText(path), JsonOutput.Options);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a measurement file ({e.Message})");
        }
        if (m is null || m.Format != FormatName)
            throw new InvalidDataException($"{path}: not a measurement file (format is not '{FormatName}'; make one with trellis measure)");
        if (m.Version != CurrentVersion)
            throw new InvalidDataException($"{path}: measurement version {m.Version}, this trellis reads version {CurrentVersion}");
        if (m.Groups is null || m.Candidates is null || m.Candidates.Count == 0 || m.Fingerprint is null)
            throw new InvalidDataException($"{path}: the measurement has no groups or no candidate K");
        foreach (var g in m.Groups)
        {
            if (g.Kl is null || g.Linears is null || g.Group is null)
                throw new InvalidDataException($"{path}: a group of layer {g.Layer} lacks its linears or KL values");
            foreach (var (k, kl) in g.Kl)
            {
                if (k is < 1 or > BitAllocation.MaxBits || !double.IsFinite(kl) || kl < 0)
                    throw new InvalidDataException($"{path}: layer {g.Layer} {g.Group}: K = {k} has KL {kl}; K must be 1..{BitAllocation.MaxBits} and KL finite and ≥ 0");
            }
        }
        return m;
    }
}
