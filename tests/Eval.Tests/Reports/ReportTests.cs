using System.Xml.Linq;
using Converter.Eval.Evaluation;
using Converter.Eval.Loading;
using Converter.Eval.Metrics;
using Converter.Eval.Reports;

namespace Converter.Eval.Tests.Reports;

/// <summary>The charts are well-formed SVG with the right scales; the report holds every model and table.</summary>
public class ReportTests
{
    [Test]
    public void LogAxisRunsFromTheOneTwoFiveStepBelowToTheOneAbove()
    {
        var axis = YAxis.For([0.03, 0.4], log: true);
        Assert.That(axis.Ticks, Is.EqualTo(new[] { 0.02, 0.05, 0.1, 0.2, 0.5 }).Within(1e-12));
        Assert.That(axis.Fraction(0.02), Is.EqualTo(0).Within(1e-12));
        Assert.That(axis.Fraction(0.5), Is.EqualTo(1).Within(1e-12));
        Assert.That(axis.Fraction(0.1), Is.EqualTo(Math.Log10(5) / Math.Log10(25)).Within(1e-12));
        // More than three decades: ticks at the decades only; non-positive values are ignored.
        Assert.That(YAxis.For([1e-5, 0.3, 0, -1], log: true).Ticks, Is.EqualTo(new[] { 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1 }).Within(1e-15));
        Assert.That(YAxis.For([2, 7], log: false, min: 0).Ticks[0], Is.EqualTo(0));
    }

    [Test]
    public void BarChartDrawsOneBarPerValueAndSkipsMissingOnes()
    {
        var chart = new SvgBarChart
        {
            Title = "t <&>",
            XLabel = "x",
            YLabel = "y",
            LogY = true,
            Categories = ["a", "b", "c"],
            Series = [new BarSeries("one", [0.1, null, 0.01]), new BarSeries("two", [0.2, 0.05, 0])],
        };
        var svg = XElement.Parse(SvgLineChart.Document(560, 360, [chart.Render(0, 0)]));
        var bars = svg.Descendants().Where(e => e.Name.LocalName == "rect" && e.Elements().Any(c => c.Name.LocalName == "title")).ToList();
        Assert.That(bars.Select(b => b.Value), Is.EqualTo(new[] { "one: 0.1", "two: 0.2", "two: 0.05", "one: 0.01" }), "null and, on a log axis, zero draw nothing");
        Assert.That(svg.ToString(), Does.Contain("t &lt;&amp;&gt;"));
        double Height(string name) => double.Parse(bars.First(b => b.Value == name).Attribute("height")!.Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(Height("two: 0.2"), Is.GreaterThan(Height("one: 0.1")));
    }

    [Test]
    public void ReportHoldsEveryModelTableAndChart()
    {
        var input = new EvalReportInput("trellis compare: <test>", "/ref", "ref", "/t.txt", 2, 8, 3, [Result("q2", 2.1, 0.3), Result("q4", 4.1, 0.02)], 1.5);
        var html = EvalReport.Render(input);
        Assert.That(html, Does.StartWith("<!DOCTYPE html>").And.EndWith("</html>\n"));
        Assert.That(html, Does.Contain("trellis compare: &lt;test&gt;"));
        Assert.That(System.Text.RegularExpressions.Regex.Matches(html, "<svg ").Count, Is.EqualTo(4), "rfn, SQNR, KL buckets, KL against bits");
        Assert.That(html, Does.Contain("KL(A, B) against bits per weight").And.Contain("q2").And.Contain("q4").And.Contain("0.30000").And.Contain("model.layers.1"));
        foreach (var svg in System.Text.RegularExpressions.Regex.Matches(html, "<svg .*?</svg>", System.Text.RegularExpressions.RegexOptions.Singleline))
            Assert.That(() => XElement.Parse(svg.ToString()!), Throws.Nothing);
        Assert.That(EvalReport.Render(input with { Results = [input.Results[0]] }), Does.Contain("Top-K").And.Not.Contain("against bits"));

        // A second variant at the same bits (another seed, say) is a point of its own, not a line doubling back.
        var sameBits = EvalReport.Render(input with { Results = [.. input.Results, Result("q4-seed1", 4.1, 0.021)] });
        var kl = System.Text.RegularExpressions.Regex.Match(sameBits, "<svg [^>]*>(?:(?!</svg>).)*against bits.*?</svg>", System.Text.RegularExpressions.RegexOptions.Singleline).Value;
        Assert.That(kl, Does.Contain(">mul1, cal 128×512<").And.Contain(">mul1, cal 128×512 (more)<"));
        Assert.That(System.Text.RegularExpressions.Regex.Matches(kl, "<polyline").Count, Is.EqualTo(1));
    }

    private static ComparisonResult Result(string name, double bits, double kl)
    {
        var buckets = KlBuckets.Compute([kl, kl / 2], [0.1, 0.99]);
        var logits = new LogitMetrics(80, 75, kl, kl, kl, kl, [0.3, 0.4, 0.5], [0.3, 0.4, 0.5], [0.9, 0.5, 0.2], buckets, 16, 14);
        ModuleMetrics[] modules = [new("model.embed_tokens", 0, 0, 76, 0), new("model.layers.0", kl, 0.01, 20, 0.001), new("model.layers.1", kl * 2, 0.01, 17, 0.002), new("model.norm", kl, 0.01, 17, 0.002)];
        return new ComparisonResult(name, "/" + name, new QuantizationSummary(Math.Round(bits), bits, 6, "mul1", "0x83DCD12D", "128×512"), modules, logits, 1);
    }
}
