using Converter.Conversion.Pipeline;
using Converter.Conversion.Pipeline.Allocation;
using NUnit.Framework;

namespace Converter.Convert.Tests;

public class MeasuredAllocationTests
{
    private static List<AllocationTarget> Targets(int groups, long numel = 100) =>
        Enumerable.Range(0, groups).Select(g => new AllocationTarget($"l{g}.w", g, "mlp.d", 1, numel)).ToList();

    private static Measurement Measured(IReadOnlyList<AllocationTarget> targets, Func<int, int, double> kl, params int[] candidates) => new(
        Measurement.FormatName, Measurement.CurrentVersion, "model", "0123", "LlamaForCausalLM", targets.Max(t => t.Layer) + 1, candidates, "mul1", "built-in", 8, 64, 0, "text", 2, 32,
        targets.GroupBy(t => (t.Layer, t.Group)).Select(g => new MeasuredGroup(g.Key.Layer, g.Key.Group, g.Sum(t => t.Numel), g.Select(t => t.Name).ToList(),
            candidates.ToDictionary(k => k, k => kl(g.Key.Layer, k)))).ToList(), 1.0);

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
            Assert.That(back.Groups.Select(g => g.Kl[2]), Is.EqualTo(m.Groups.Select(g => g.Kl[2])));
            Assert.That(back.Candidates, Is.EqualTo(new[] { 2, 4 }));

            var bad = Path.Combine(dir.FullName, "bad.json");
            foreach (var text in new[] { "{", "[]", "{\"format\": \"other\"}", File.ReadAllText(path).Replace("\"2\":", "\"9\":", StringComparison.Ordinal) })
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
}
