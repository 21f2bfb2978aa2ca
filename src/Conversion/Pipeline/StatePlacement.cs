namespace Converter.Conversion.Pipeline;

/// <summary>
/// Where a GPU run keeps the calibration states between modules (<c>--calibration-states</c>). On the GPU a decoder
/// block runs on them in place; on the host every 2-row chunk of a module's pass is gathered, uploaded and brought
/// back. On an H200 that host traffic was most of the difference between the converter's forward of an 8B layer over
/// 250 × 2048 tokens (7.3 s) and the bare forward's (3.0 s), docs/benchmarks.md.
/// </summary>
public enum StatePlacement
{
    /// <summary>On the GPU when the resource estimate says they fit beside the rest of the job's GPU memory, else on the host.</summary>
    Auto,

    /// <summary>On the GPU (an error on the CPU).</summary>
    Gpu,

    /// <summary>In host memory, one array per row.</summary>
    Host,
}

/// <summary>The option's spellings.</summary>
public static class StatePlacementNames
{
    public static string Name(StatePlacement placement) => placement switch
    {
        StatePlacement.Auto => "auto",
        StatePlacement.Gpu => "gpu",
        StatePlacement.Host => "host",
        _ => throw new ArgumentOutOfRangeException(nameof(placement), placement, null),
    };

    /// <summary>Parses auto, gpu or host (case-insensitive); null for anything else.</summary>
    public static StatePlacement? Parse(string text) => text.ToLowerInvariant() switch
    {
        "auto" => StatePlacement.Auto,
        "gpu" => StatePlacement.Gpu,
        "host" => StatePlacement.Host,
        _ => null,
    };
}
