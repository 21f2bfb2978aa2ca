using System.Text.Json.Nodes;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Pipeline.Allocation;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

public class MeasuredAllocationTests
{
    private static List<AllocationTarget> Targets(int groups, long numel = 100) =>
        Enumerable.Range(0, groups).Select(g => new AllocationTarget($"l{g}.w", g, "mlp.d", 1, numel)).ToList();

    /// <summary>A group-granularity measurement of <paramref name="targets"/> whose group in layer l has KL kl(l, K).</summary>
    private static Measurement Measured(IReadOnlyList<AllocationTarget> targets, Func<int, int, double> kl, params int[] candidates) =>
        Measured(targets, MeasureGranularity.Group, (unit, k) => kl(unit[0].Layer, k), candidates);

    /// <summary>A measurement of <paramref name="targets"/> cut into units by <paramref name="granularity"/>, a unit's KL at K kl(its linears, K).</summary>
    private static Measurement Measured(IReadOnlyList<AllocationTarget> targets, MeasureGranularity granularity, Func<IReadOnlyList<AllocationTarget>, int, double> kl,
        params int[] candidates) => new(
        Measurement.FormatName, Measurement.CurrentVersion, "model", "0123", "LlamaForCausalLM", targets.Max(t => t.Layer) + 1, candidates, "mul1", "built-in", 8, 64, 0, "text", 2, 32,
        granularity, granularity.Units(targets).Select(u => new MeasuredUnit(u[0].Layer, u[0].Group, u.Sum(t => t.Numel), u.Select(t => t.Name).ToList(),
            candidates.ToDictionary(k => k, k => kl(u, k)))).ToList(), 1.0);

    /// <summary>Every assignment of candidates to groups within the budget; the least total KL (brute force).</summary>
    private static double BestByEnumeration(IReadOnlyList<AllocationTarget> targets, Func<int, int, double> kl, int[] candidates, double bpw)
    {
        long budget = (long)(bpw * targets.Sum(t => t.Numel));
        double best = double.PositiveInfinity;
        int n = targets.Count;
        var pick = new int[n];
        for (long code = 0; code < (long)Math.Pow(candidates.Length, n); code++)
        {
            long c = code, used = 0;
            double total = 0;
            for (int g = 0; g < n; g++)
            {
                pick[g] = candidates[c % candidates.Length];
                c /= candidates.Length;
                used += targets[g].Numel * pick[g];
                total += kl(g, pick[g]);
            }
            if (used <= budget)
                best = Math.Min(best, total);
        }
        return best;
    }

    [Test]
    public void SpendsTheBudgetWhereTheMeasuredKlFallsMost()
    {
        var targets = Targets(4);
        // Group 2 is 10× as sensitive as the others at every K.
        double Kl(int g, int k) => (g == 2 ? 10 : 1) * Math.Pow(2, -2 * k);
        var bits = MeasuredAllocation.Allocate(targets, Measured(targets, Kl, 2, 3, 4, 5), 3.25, "m.json");
        Assert.That(bits["l2.w"], Is.GreaterThan(bits["l0.w"]));
        Assert.That(targets.Sum(t => t.Numel * bits[t.Name]), Is.LessThanOrEqualTo((long)(3.25 * 400)));
        // The uniform allocation gives everyone 3 and one group 4 (budget 1300 bits): the measured one must predict less KL.
        var uniform = BitAllocation.Allocate(targets, 3.25);
        var m = Measured(targets, Kl, 2, 3, 4, 5);
        Assert.That(MeasuredAllocation.PredictedKl(targets, m, bits, "m.json"), Is.LessThan(MeasuredAllocation.PredictedKl(targets, m, uniform, "m.json")));
    }

    [Test]
    public void APlanNeverPredictsWorseThanTheUniformAllocation()
    {
        var targets = Targets(4);
        // Measured at 2 and 4 only, 3 bpw: uniform is K = 3 for all, predicted between 2 and 4 in log KL (the
        // geometric mean), below any 2/4 mix the greedy can build (the arithmetic mean). The plan keeps uniform.
        double Kl(int g, int k) => (1 + g) * Math.Pow(4, -k);
        var m = Measured(targets, Kl, 2, 4);
        var greedy = MeasuredAllocation.Allocate(targets, m, 3.0, "m.json");
        var uniform = BitAllocation.Allocate(targets, 3.0);
        Assert.That(MeasuredAllocation.PredictedKl(targets, m, greedy, "m.json"), Is.GreaterThan(MeasuredAllocation.PredictedKl(targets, m, uniform, "m.json")),
            "the situation this test is about");
        var plan = AllocationPlan.Measured(targets, m, 3.0, "m.json");
        Assert.That(plan.SameAsUniform, Is.True);
        Assert.That(plan.Bits, Is.EquivalentTo(uniform));
        Assert.That(plan.PredictedKl, Is.EqualTo(plan.UniformPredictedKl));
    }

    [TestCase(2.5)]
    [TestCase(3.0)]
    [TestCase(3.4)]
    [TestCase(4.75)]
    public void EqualsTheBruteForceOptimumWhenReturnsDiminish(double bpw)
    {
        var targets = Targets(5);
        // Convex, decreasing in K, a different scale per group: the greedy on marginal gains is optimal here.
        double Kl(int g, int k) => (1 + g * 0.7) * Math.Exp(-1.3 * k) + 0.01 * g;
        int[] candidates = [2, 3, 4, 5, 6];
        var m = Measured(targets, Kl, candidates);
        var bits = MeasuredAllocation.Allocate(targets, m, bpw, "m.json");
        double predicted = MeasuredAllocation.PredictedKl(targets, m, bits, "m.json");
        Assert.That(predicted, Is.EqualTo(BestByEnumeration(targets, Kl, candidates, bpw)).Within(1e-12));
    }

    [Test]
    public void MeasuredRiseWithMoreBitsIsTreatedAsNoise()
    {
        var targets = Targets(2);
        // Group 0's KL "rises" from K 3 to 4 (noise): it must not be read as a reason to stay at 3 or as a gain at 4.
        double Kl(int g, int k) => g == 0 ? k switch { 2 => 1.0, 3 => 0.1, _ => 0.2 } : Math.Pow(2, -k);
        var m = Measured(targets, Kl, 2, 3, 4);
        var bits = MeasuredAllocation.Allocate(targets, m, 3.5, "m.json");
        Assert.That(bits["l0.w"], Is.EqualTo(3), "no gain is credited for K 4 over K 3");
        Assert.That(bits["l1.w"], Is.EqualTo(4));
    }

    [Test]
    public void LinearsOfOneGroupShareTheirK()
    {
        List<AllocationTarget> targets = [new("l0.q", 0, "attn.qkv", 2, 100), new("l0.k", 0, "attn.qkv", 2, 50), new("l0.o", 0, "attn.o", 2, 100)];
        var m = Measured(targets, (g, k) => Math.Pow(3, -k), 2, 3, 4);
        var bits = MeasuredAllocation.Allocate(targets, m, 3.0, "m.json");
        Assert.That(bits["l0.q"], Is.EqualTo(bits["l0.k"]));
    }

    [Test]
    public void TargetBelowTheSmallestCandidateFailsNamingTheFile()
    {
        var targets = Targets(2);
        var e = Assert.Throws<InvalidDataException>(() => MeasuredAllocation.Allocate(targets, Measured(targets, (g, k) => 1.0 / k, 3, 4), 2.5, "m.json"));
        Assert.That(e!.Message, Does.StartWith("m.json: ").And.Contain("smallest measured candidate"));
    }

    [Test]
    public void MeasurementOfAnotherModelIsRefused()
    {
        var targets = Targets(3);
        var other = Measured(Targets(3, numel: 64), (g, k) => 1.0 / k, 2, 3);
        var e = Assert.Throws<InvalidDataException>(() => MeasuredAllocation.Allocate(targets, other, 2.5, "m.json"));
        Assert.That(e!.Message, Does.StartWith("m.json: ").And.Contain("this model"));
        var fewer = Measured(Targets(2), (g, k) => 1.0 / k, 2, 3);
        Assert.Throws<InvalidDataException>(() => MeasuredAllocation.Allocate(targets, fewer, 2.5, "m.json"));
    }

    [Test]
    public void MeasurementFileRoundTripsAndBadFilesFailInOneLine()
    {
        var dir = Directory.CreateTempSubdirectory("trellis-measurement-");
        try
        {
            var targets = Targets(2);
            var m = Measured(targets, (g, k) => 1.0 / k, 2, 4);
            var path = Path.Combine(dir.FullName, "m.json");
            m.Save(path);
            var back = Measurement.Load(path);
            Assert.That(back.Units.Select(u => u.Kl[2]), Is.EqualTo(m.Units.Select(u => u.Kl[2])));
            Assert.That(back.Candidates, Is.EqualTo(new[] { 2, 4 }));
            Assert.That(back.Granularity, Is.EqualTo(MeasureGranularity.Group));
            Assert.That(File.ReadAllText(path), Does.Contain("\"granularity\": \"group\""));

            var bad = Path.Combine(dir.FullName, "bad.json");
            var good = File.ReadAllText(path);
            foreach (var text in new[]
            {
                "{", "[]", "{\"format\": \"other\"}", good.Replace("\"2\":", "\"9\":", StringComparison.Ordinal),
                good.Replace("\"version\": 2", "\"version\": 3", StringComparison.Ordinal), good.Replace("\"units\"", "\"groups\"", StringComparison.Ordinal),
                good.Replace("\"granularity\": \"group\"", "\"granularity\": \"layer\"", StringComparison.Ordinal),
            })
            {
                File.WriteAllText(bad, text);
                var e = Assert.Throws<InvalidDataException>(() => Measurement.Load(bad));
                Assert.That(e!.Message, Does.StartWith(bad + ": ").And.Not.Contain("\n"));
            }
            Assert.Throws<FileNotFoundException>(() => Measurement.Load(Path.Combine(dir.FullName, "missing.json")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>One layer's seven linears in their allocation groups, as <see cref="BitAllocation.Targets"/> gives a llama layer.</summary>
    private static List<AllocationTarget> LlamaLayer() =>
    [
        new("l0.q", 0, "attn.qkv", 2, 100), new("l0.k", 0, "attn.qkv", 2, 50), new("l0.v", 0, "attn.qkv", 2, 50), new("l0.o", 0, "attn.o", 2, 100),
        new("l0.gate", 0, "mlp.gu", 1, 300), new("l0.up", 0, "mlp.gu", 1, 300), new("l0.down", 0, "mlp.d", 1, 300),
    ];

    [Test]
    public void PerTensorUnitsOfOneGroupGetDifferentKWhenTheMeasurementSaysSo()
    {
        var targets = LlamaLayer();
        // v_proj is 30× as sensitive as anything else (llama.cpp's mixes give attn_v more bits for this reason).
        double Kl(IReadOnlyList<AllocationTarget> unit, int k) => (unit[0].Name == "l0.v" ? 30 : 1) * Math.Pow(4, -k);
        var m = Measured(targets, MeasureGranularity.Tensor, Kl, 2, 3, 4, 5);
        Assert.That(m.Units, Has.Count.EqualTo(7));
        foreach (double bpw in new[] { 2.25, 2.5, 3.0 })
        {
            var bits = MeasuredAllocation.Allocate(targets, m, bpw, "m.json");
            Assert.That(targets.Sum(t => t.Numel * bits[t.Name]), Is.LessThanOrEqualTo((long)(bpw * targets.Sum(t => t.Numel))), $"{bpw} bpw");
            Assert.That(bits["l0.v"], Is.GreaterThan(bits["l0.q"]), $"{bpw} bpw: v_proj rises above q_proj of its group");
        }
    }

    [Test]
    public void UnitsDefineWhatSharesAK()
    {
        var targets = LlamaLayer();
        // The same sensitivities measured per group: q, k and v (and gate and up) can only rise together.
        double Kl(IReadOnlyList<AllocationTarget> unit, int k) => (unit.Any(t => t.Name == "l0.v") ? 30 : 1) * Math.Pow(4, -k);
        var bits = MeasuredAllocation.Allocate(targets, Measured(targets, MeasureGranularity.Group, Kl, 2, 3, 4, 5), 3.1, "m.json");
        Assert.That(new[] { bits["l0.q"], bits["l0.k"] }, Is.All.EqualTo(bits["l0.v"]));
        Assert.That(bits["l0.gate"], Is.EqualTo(bits["l0.up"]));
    }

    [Test]
    public void TheMeasuredAllocationBeatsTheGreedyWhereTheGreedyFallsShort()
    {
        // A (28 weights) gains 0.2 for one more bit, the most per bit; B (100) gains 0.5. 100 bits to spare: raising A
        // first (the greedy) leaves too few for B.
        List<AllocationTarget> targets = [new("a", 0, "mlp.d", 1, 28), new("b", 1, "mlp.d", 1, 100)];
        double Kl(int layer, int k) => k == 2 ? 1.0 : layer == 0 ? 0.8 : 0.5;
        var m = Measured(targets, Kl, 2, 3);
        var bits = MeasuredAllocation.Allocate(targets, m, (2 * 128 + 100) / 128.0, "m.json");
        Assert.That((bits["a"], bits["b"]), Is.EqualTo((2, 3)));
        Assert.That(MeasuredAllocation.PredictedKl(targets, m, bits, "m.json"), Is.EqualTo(1.5));
    }

    private static readonly string TinyLlamaV1 = Path.Combine(RepoPaths.TestData, "measurements", "tiny-llama-seed0-v1.json");

    private static List<AllocationTarget> TinyLlamaTargets() => MeasureGranularityTests.TargetsOf(RepoPaths.SampleModel);

    [Test]
    public void AVersionOneFileStillLoadsAndAllocatesAsBefore()
    {
        // tiny-llama's first measurement (docs/benchmarks.md "Measured vs uniform allocation"), written by version 1 with "groups".
        var m = Measurement.Load(TinyLlamaV1);
        Assert.That(m.Granularity, Is.EqualTo(MeasureGranularity.Group));
        Assert.That(m.Units, Has.Count.EqualTo(16));
        var targets = TinyLlamaTargets();

        // 2.5 bpw: the greedy of version 1 was optimal here, and the plan is the same to the linear. Per layer
        // q/k/v, o, gate/up, down as the greedy chose them and docs/benchmarks.md describes.
        var plan = AllocationPlan.Measured(targets, m, 2.5, TinyLlamaV1);
        int[][] perLayer = [[2, 2, 3, 3], [3, 3, 2, 2], [3, 3, 2, 2], [3, 3, 3, 2]];
        string[][] groups = [["q_proj", "k_proj", "v_proj"], ["o_proj"], ["gate_proj", "up_proj"], ["down_proj"]];
        foreach (var t in targets)
        {
            int g = Array.FindIndex(groups, names => names.Any(n => t.Name.EndsWith("." + n, StringComparison.Ordinal)));
            Assert.That(plan.Bits[t.Name], Is.EqualTo(perLayer[t.Layer][g]), t.Name);
        }
        Assert.That(plan.PredictedKl, Is.EqualTo(0.13497695061860357).Within(1e-15));

        // 3.5 bpw: the greedy predicted 0.03273; the exact optimum over the same measurement is 0.03215.
        var exact = AllocationPlan.Measured(targets, m, 3.5, TinyLlamaV1);
        Assert.That(exact.PredictedKl, Is.EqualTo(0.03215).Within(0.000005));
        Assert.That(targets.Sum(t => t.Numel * exact.Bits[t.Name]), Is.LessThanOrEqualTo((long)(3.5 * targets.Sum(t => t.Numel))));
    }

    [Test]
    public void AVersionOneFileAllocatesAsItsVersionTwoRewrite()
    {
        using var dir = new TempDirectory();
        var m = Measurement.Load(TinyLlamaV1);
        m.Save(dir.File("v2.json"));
        var rewritten = Measurement.Load(dir.File("v2.json"));
        Assert.That(JsonNode.Parse(File.ReadAllText(dir.File("v2.json")))!["version"]!.GetValue<int>(), Is.EqualTo(2));
        var targets = TinyLlamaTargets();
        foreach (double bpw in new[] { 2.25, 3.0, 4.5 })
            Assert.That(MeasuredAllocation.Allocate(targets, rewritten, bpw, "v2.json"), Is.EqualTo(MeasuredAllocation.Allocate(targets, m, bpw, "v1.json")));
    }

    private static readonly List<AllocationTarget> WithExperts =
    [
        .. LlamaLayer().Take(4),
        .. Enumerable.Range(0, 2).SelectMany(e => new[] { "gate", "up", "down" }.Select(p => new AllocationTarget($"l0.experts.{e}.{p}", 0, BitAllocation.RoutedExperts, 0, 100))),
    ];

    private static IEnumerable<TestCaseData> Mismatches()
    {
        TestCaseData Case(string name, Func<List<MeasuredUnit>, List<MeasuredUnit>> change, string says) => new TestCaseData(change, says).SetName(name);
        yield return Case("a linear this model lacks", u => [u[0] with { Linears = ["l0.q_proj"] }, .. u.Skip(1)], "which this model does not have");
        yield return Case("a linear measured twice", u => [.. u, u[1]], "in two units");
        yield return Case("a linear of another group", u => [u[0] with { Group = "attn.o" }, .. u.Skip(1)], "this model has it in layer 0 attn.qkv");
        yield return Case("another weight count", u => [u[0] with { Numel = 64 }, .. u.Skip(1)], "measured with 64 weights, this model has 100");
        yield return Case("a linear not measured", u => [.. u.Skip(1)], "no measurement for l0.q");
        yield return Case("routed experts split", u => [.. u.Take(4), u[4] with { Linears = u[4].Linears.Take(3).ToList(), Numel = 300 },
            u[4] with { Linears = u[4].Linears.Skip(3).ToList(), Numel = 300 }], "3 of the layer's 6 routed expert linears");
    }

    [TestCaseSource(nameof(Mismatches))]
    public void AMeasurementThatDoesNotFitTheModelFailsInOneLineNamingTheFile(Func<List<MeasuredUnit>, List<MeasuredUnit>> change, string says)
    {
        var m = Measured(WithExperts, MeasureGranularity.Tensor, (u, k) => Math.Pow(4, -k), 2, 3);
        Assert.That(m.Units, Has.Count.EqualTo(5), "q, k, v, o and the experts");
        var changed = m with { Units = change(m.Units.ToList()) };
        var e = Assert.Throws<InvalidDataException>(() => MeasuredAllocation.Allocate(WithExperts, changed, 2.5, "m.json"));
        Assert.That(e!.Message, Does.StartWith("m.json: ").And.Contain(says).And.Not.Contain("\n"));
        Assert.That(MeasuredAllocation.Allocate(WithExperts, m, 2.5, "m.json"), Has.Count.EqualTo(WithExperts.Count), "the unchanged measurement fits");
    }
}
