using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Converter.Conversion.Reporting;
using Converter.Formats.IO;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>
/// One measured unit of the model (<see cref="MeasureGranularity"/>: a single linear, a layer's routed experts, or an
/// allocation group of <see cref="BitAllocation.Targets"/>) and the KL divergence of the model's output from the
/// original's when this unit alone is quantized at each candidate K.
/// </summary>
/// <param name="Group">The allocation group the unit's linears belong to (attn.qkv for q_proj alone too).</param>
/// <param name="Linears">The unit's linears by source name; their K rises and falls together.</param>
/// <param name="Kl">Candidate K → mean KL(original ‖ model with this unit at K) over the measurement rows.</param>
public sealed record MeasuredUnit(int Layer, string Group, long Numel, IReadOnlyList<string> Linears, IReadOnlyDictionary<int, double> Kl)
{
    /// <summary>The unit's linear when it has one, else its group: how logs and errors name it.</summary>
    [JsonIgnore]
    public string Label => Linears.Count == 1 ? Linears[0] : $"layer {Layer} {Group}";
}

/// <summary>
/// What `trellis measure` writes and `trellis convert --measurement` reads: per measured unit and candidate K, how
/// much the output KL grows when that unit alone is quantized (the sensitivity exllamav3's measure/optimize
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
    MeasureGranularity Granularity,
    IReadOnlyList<MeasuredUnit> Units,
    double Seconds,
    MeasureCompensation Compensation = MeasureCompensation.None)
{
    public const string FormatName = "trellis-measurement";

    /// <summary>
    /// 2 since units finer than groups: a version-1 reader would key such a file's units by (layer, group) and
    /// blame the model; it now says the version is newer. Version 1 (groups only) is still read.
    /// </summary>
    public const int CurrentVersion = 2;

    /// <summary>Refuses a measurement made on another model (<see cref="ModelFingerprint"/>): its sensitivities say nothing about this one.</summary>
    public void RequireModel(string modelDir, string path)
    {
        var actual = ModelFingerprint.Compute(modelDir);
        if (actual != Fingerprint)
            throw new InvalidDataException($"{path}: measured on another model ({Model}, fingerprint {Fingerprint}); {modelDir} has fingerprint {actual}");
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, JsonOutput.Options));

    /// <summary>Reads and checks a measurement file (version 1 or 2); every problem is one line naming the file.</summary>
    public static Measurement Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: measurement file not found");
        Measurement? m;
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(path));
            if (node is not JsonObject file || file["format"]?.GetValueKind() != JsonValueKind.String || file["format"]!.GetValue<string>() != FormatName)
                throw new InvalidDataException($"{path}: not a measurement file (format is not '{FormatName}'; make one with trellis measure)");
            int version = file["version"]?.GetValueKind() == JsonValueKind.Number ? file["version"]!.GetValue<int>() : 0;
            if (version is < 1 or > CurrentVersion)
                throw new InvalidDataException($"{path}: measurement version {version}, this trellis reads versions 1 to {CurrentVersion}");
            if (version == 1)
                FromVersion1(file);
            m = file.Deserialize<Measurement>(JsonOutput.Options);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: not a measurement file ({e.Message})");
        }
        if (m is null || m.Units is null || m.Candidates is null || m.Candidates.Count == 0 || m.Fingerprint is null)
            throw new InvalidDataException($"{path}: the measurement has no units or no candidate K");
        foreach (var u in m.Units)
        {
            if (u.Kl is null || u.Linears is null || u.Linears.Count == 0 || u.Group is null)
                throw new InvalidDataException($"{path}: a unit of layer {u.Layer} lacks its linears or KL values");
            foreach (var (k, kl) in u.Kl)
            {
                if (k is < 1 or > BitAllocation.MaxBits || !double.IsFinite(kl) || kl < 0)
                    throw new InvalidDataException($"{path}: {u.Label}: K = {k} has KL {kl}; K must be 1..{BitAllocation.MaxBits} and KL finite and ≥ 0");
            }
        }
        return m;
    }

    /// <summary>Version 1 measured allocation groups only and called them "groups"; as version 2 it is a group-granularity file.</summary>
    private static void FromVersion1(JsonObject file)
    {
        var groups = file["groups"];
        file.Remove("groups");
        file["units"] = groups;
        file["granularity"] = MeasureGranularity.Group.Name();
        file["version"] = CurrentVersion;
    }
}
