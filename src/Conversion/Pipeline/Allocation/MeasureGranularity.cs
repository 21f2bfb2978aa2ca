using System.Text.Json.Serialization;
using Converter.Conversion.Reporting;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>
/// What `trellis measure` quantizes alone at each candidate K, and so what `convert --measurement` gives one K: the
/// unit of the measurement. Written lower-case ("tensor", "group"), in the file as on the command line.
/// </summary>
[JsonConverter(typeof(LowerCaseEnumJsonConverter<MeasureGranularity>))]
public enum MeasureGranularity
{
    /// <summary>Every dense linear alone (q, k, v, o, gate, up, down, latent attention's, shared experts'); a layer's routed experts together.</summary>
    Tensor,

    /// <summary>The allocation groups of <see cref="BitAllocation.Targets"/>: q/k/v, o, gate/up, down, routed experts (version-1 files).</summary>
    Group,
}

/// <summary>The measured units a granularity makes of a model's budgeted linears.</summary>
public static class MeasureGranularityUnits
{
    /// <summary>The lower-case names, as the command line and the file spell them.</summary>
    public static IReadOnlyList<string> Names { get; } = Enum.GetValues<MeasureGranularity>().Select(Name).ToList();

    public static string Name(this MeasureGranularity granularity) => granularity.ToString().ToLowerInvariant();

    /// <summary>
    /// <paramref name="targets"/> cut into measured units, in the targets' order (a unit where its first linear is):
    /// per layer and allocation group for <see cref="MeasureGranularity.Group"/>; one linear each for
    /// <see cref="MeasureGranularity.Tensor"/>, except that all routed experts of a layer stay one unit, because
    /// exllamav3's fused expert kernels take one K for every expert of a layer (and a unit per expert would multiply
    /// the measurement's forwards by the expert count).
    /// </summary>
    public static List<List<AllocationTarget>> Units(this MeasureGranularity granularity, IReadOnlyList<AllocationTarget> targets)
    {
        bool OneUnit(AllocationTarget t) => granularity == MeasureGranularity.Group || t.Group == BitAllocation.RoutedExperts;
        return targets
            .Select((t, index) => (t, Key: OneUnit(t) ? (t.Layer, t.Group, Index: -1) : (t.Layer, t.Group, Index: index)))
            .GroupBy(x => x.Key)
            .Select(g => g.Select(x => x.t).ToList())
            .ToList();
    }
}
