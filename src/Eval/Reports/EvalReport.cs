using System.Globalization;
using System.Text;
using Converter.Eval.Evaluation;
using Converter.Eval.Loading;
using Converter.Eval.Metrics;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Reports;

/// <summary>What an eval or compare report shows: one or more test models against one reference on the same rows.</summary>
public sealed record EvalReportInput(
    string Title,
    string ReferenceDir,
    string ReferenceName,
    string TextPath,
    int Rows,
    int Length,
    int TopK,
    IReadOnlyList<ComparisonResult> Results,
    double Seconds);

/// <summary>
/// The self-contained HTML report of `trellis eval` and `trellis compare`: the comparison table, SVG charts (per-layer
/// rfn_err and SQNR, KL by the reference's top-1 probability, top-K figures or KL against bits) and the full tables.
/// No scripts, no external files.
/// </summary>
public static class EvalReport
{
    private const double ChartWidth = 560, ChartHeight = 340;

    public static string Render(EvalReportInput input)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(H(input.Title)).Append("</title>\n<style>")
            .Append(Css).Append("</style></head>\n<body>\n");
        sb.Append("<h1>").Append(H(input.Title)).Append("</h1>\n");
        var first = input.Results[0].Logits;
        sb.Append("<p class=\"meta\">Reference (B): <code>").Append(H(input.ReferenceDir)).Append("</code><br>Text: <code>").Append(H(input.TextPath))
            .Append(CultureInfo.InvariantCulture, $"</code>, first {input.Rows} rows × {input.Length} tokens ({first.Predicted} predicted positions), top-K up to {input.TopK}<br>")
            .Append(CultureInfo.InvariantCulture, $"Metrics as exllamav3's eval/model_diff.py (docs/exl3-format.md §6.1); KL(A, B) = KL(softmax(B) ‖ softmax(A)), B the reference. Wall time {input.Seconds:F1} s.</p>\n");

        sb.Append("<h2>Summary</h2>\n").Append(SummaryTable(input));
        sb.Append("<h2>Charts</h2>\n<div class=\"charts\">\n");
        foreach (var chart in Charts(input))
            sb.Append(SvgLineChart.Document(ChartWidth, ChartHeight, [chart]));
        sb.Append("</div>\n");
        sb.Append("<h2>KL(A, B) by the reference's top-1 probability</h2>\n").Append(BucketTable(input));
        sb.Append("<h2>Top-K</h2>\n").Append(TopKTable(input));
        sb.Append("<h2>Per-module error</h2>\n").Append(ModuleTable(input));
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    private const string Css =
        "body{font-family:sans-serif;margin:24px;color:#222;max-width:1180px}" +
        "h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc;padding-bottom:3px}" +
        ".meta{color:#555;font-size:13px;line-height:1.5}code{font-size:12px}" +
        "table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px}" +
        "th{background:#f2f2f2;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums;font-family:monospace}" +
        "tr.ref td{color:#555;font-style:italic}.charts{display:flex;flex-wrap:wrap;gap:8px}.charts svg{border:1px solid #eee}";

    private static string SummaryTable(EvalReportInput input)
    {
        var t = new HtmlTable("model", "bpw", "bpw + scales", "head bits", "codebook", "multiplier", "calibration", "KL(A, B)", "KL(B, A)", "KL median",
            "KL p90", "top-1 agreement", $"top-{input.TopK} agreement", "PPL");
        t.Row("ref", [input.ReferenceName + " (reference)", "", "", "", "", "", "", "", "", "", "", "", "", N(input.Results[0].Logits.PplB, "0.000")]);
        foreach (var r in input.Results)
        {
            var q = r.Quantization;
            var l = r.Logits;
            t.Row(null, [r.Model, q?.ConfigBits is { } b ? N(b, "0.00") : "–", q is null ? "–" : N(q.BitsWithScales, "0.000"),
                q is null ? "–" : q.HeadBits.ToString(CultureInfo.InvariantCulture), q?.Codebook ?? "–", q?.Multiplier ?? "–", q?.Calibration ?? "–",
                N(l.KlAb, "0.00000"), N(l.KlBa, "0.00000"), N(l.KlAbMedian, "0.00000"), N(l.KlAbP90, "0.00000"),
                N(l.TopkAgreement[0], "0.0000"), N(l.TopkAgreement[^1], "0.0000"), N(l.PplA, "0.000")]);
        }
        return t.ToString();
    }

    private static string BucketTable(EvalReportInput input)
    {
        var buckets = input.Results[0].Logits.KlBuckets;
        var header = new List<string> { "model" };
        header.AddRange(buckets.Select(b => BucketLabel(b) + $" ({N(100 * b.Fraction, "0.0")}% of tokens)"));
        var t = new HtmlTable([.. header]);
        foreach (var r in input.Results)
            t.Row(null, [r.Model, .. r.Logits.KlBuckets.Select(b => b.KlMean is { } m ? $"{N(m, "0.00000")} (median {N(b.KlMedian!.Value, "0.00000")})" : "–")]);
        return "<p class=\"meta\">Mean (and median) KL(A, B) of the tokens whose reference top-1 probability lies in each range; the share of tokens in each range is the reference's, the same for every model.</p>\n" + t;
    }

    private static string TopKTable(EvalReportInput input)
    {
        var header = new List<string> { "model", "figure" };
        header.AddRange(Enumerable.Range(1, input.TopK).Select(k => $"K = {k}"));
        var t = new HtmlTable([.. header]);
        t.Row("ref", [input.ReferenceName + " (reference)", "label in top-K", .. input.Results[0].Logits.LabelInTopkB.Select(v => N(v, "0.0000"))]);
        foreach (var r in input.Results)
        {
            t.Row(null, [r.Model, "label in top-K", .. r.Logits.LabelInTopkA.Select(v => N(v, "0.0000"))]);
            t.Row(null, [r.Model, "top-K agreement", .. r.Logits.TopkAgreement.Select(v => N(v, "0.0000"))]);
        }
        return t.ToString();
    }

    private static string ModuleTable(EvalReportInput input)
    {
        var t = new HtmlTable("module", "model", "rfn_err", "max_diff/norm", "sqnr (dB)", "cos_err");
        var names = input.Results[0].Modules.Select(m => m.Name).ToList();
        for (int i = 0; i < names.Count; i++)
        {
            foreach (var r in input.Results)
            {
                var m = r.Modules[i];
                t.Row(null, [m.Name, r.Model, N(m.RfnErr, "0.000000"), N(m.MaxDiffNorm, "0.000000"), N(m.Sqnr, "0.00"), N(m.CosErr, "0.000000")]);
            }
        }
        return t.ToString();
    }

    private static IEnumerable<string> Charts(EvalReportInput input)
    {
        yield return new SvgLineChart
        {
            Title = "Relative Frobenius error by layer",
            XLabel = "decoder layer",
            YLabel = "rfn_err (log scale)",
            LogY = true,
            Width = ChartWidth,
            Height = ChartHeight,
            Series = input.Results.Select(r => new ChartSeries(r.Model, LayerPoints(r, m => m.RfnErr))).ToList(),
        }.Render(0, 0);
        yield return new SvgLineChart
        {
            Title = "SQNR by layer",
            XLabel = "decoder layer",
            YLabel = "SQNR (dB)",
            Width = ChartWidth,
            Height = ChartHeight,
            Series = input.Results.Select(r => new ChartSeries(r.Model, LayerPoints(r, m => m.Sqnr))).ToList(),
        }.Render(0, 0);
        yield return new SvgBarChart
        {
            Title = "KL(A, B) by reference top-1 probability",
            XLabel = "reference top-1 probability",
            YLabel = "mean KL (log scale)",
            LogY = true,
            Width = ChartWidth,
            Height = ChartHeight,
            Categories = input.Results[0].Logits.KlBuckets.Select(BucketLabel).ToList(),
            Series = input.Results.Select(r => new BarSeries(r.Model, r.Logits.KlBuckets.Select(b => b.KlMean).ToList())).ToList(),
        }.Render(0, 0);

        var withBits = input.Results.Where(r => r.Quantization is not null).ToList();
        if (withBits.Count > 1)
        {
            // One line per codebook and calibration through the first variant at each bits value; further variants at the
            // same bits (other seeds or settings) are points of a series of their own, so no line doubles back.
            var series = new List<ChartSeries>();
            foreach (var g in withBits.GroupBy(r => SeriesName(r.Quantization!)))
            {
                var byBits = g.GroupBy(r => r.Quantization!.BitsWithScales).OrderBy(b => b.Key).ToList();
                series.Add(new ChartSeries(g.Key, byBits.Select(b => (b.Key, b.First().Logits.KlAb)).ToList()));
                var repeats = byBits.SelectMany(b => b.Skip(1)).Select(r => (r.Quantization!.BitsWithScales, r.Logits.KlAb)).ToList();
                if (repeats.Count > 0)
                    series.Add(new ChartSeries(g.Key + " (more)", repeats, Line: false));
            }
            yield return new SvgLineChart
            {
                Title = "KL(A, B) against bits per weight",
                XLabel = "bits per weight (with scales)",
                YLabel = "KL(A, B) (log scale)",
                LogY = true,
                LegendWidth = 200,
                Width = ChartWidth,
                Height = ChartHeight,
                Series = series,
            }.Render(0, 0);
        }
        else
        {
            var r = input.Results[0];
            yield return new SvgLineChart
            {
                Title = "Top-K",
                XLabel = "K",
                YLabel = "fraction of positions",
                Width = ChartWidth,
                Height = ChartHeight,
                Series =
                [
                    new ChartSeries("A: label in top-K", Ks(r.Logits.LabelInTopkA)),
                    new ChartSeries("B: label in top-K", Ks(r.Logits.LabelInTopkB)),
                    new ChartSeries("top-K agreement", Ks(r.Logits.TopkAgreement)),
                ],
            }.Render(0, 0);
        }
    }

    /// <summary>"mul1, cal 128×512"; a multiplier other than exllamav3's default is named.</summary>
    private static string SeriesName(QuantizationSummary q)
    {
        bool defaultMultiplier = q.Multiplier is null
            || (CodebookRegistry.TryGet(q.Codebook, out var def) && q.Multiplier == $"0x{def.DefaultMultiplier:X8}");
        return $"{q.Codebook}{(defaultMultiplier ? "" : " " + q.Multiplier)}, cal {q.Calibration ?? "?"}";
    }

    private static List<(double X, double Y)> Ks(IReadOnlyList<double> values) => values.Select((v, k) => ((double)(k + 1), v)).ToList();

    /// <summary>(layer index, value) for the decoder blocks, named model.layers.N.</summary>
    private static List<(double X, double Y)> LayerPoints(ComparisonResult r, Func<ModuleMetrics, double> value)
    {
        const string prefix = "model.layers.";
        return r.Modules
            .Where(m => m.Name.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(m.Name.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .Select(m => ((double)int.Parse(m.Name.AsSpan(prefix.Length), CultureInfo.InvariantCulture), value(m)))
            .ToList();
    }

    private static string BucketLabel(KlBucket b) => $"[{N(b.Lo, "0.00")}, {N(b.Hi, "0.00")}{(b.Hi >= 1 ? "]" : ")")}";

    /// <summary>Invariant formatting; a value that rounds to zero prints unsigned.</summary>
    private static string N(double v, string format)
    {
        var s = v.ToString(format, CultureInfo.InvariantCulture);
        return s.StartsWith('-') && s.AsSpan(1).Trim("0.").IsEmpty ? s[1..] : s;
    }

    private static string H(string s) => SvgLineChart.Escape(s);

    /// <summary>An HTML table built row by row; numeric-looking cells are right-aligned.</summary>
    private sealed class HtmlTable(params string[] header)
    {
        private readonly StringBuilder _body = new();

        public void Row(string? cssClass, string[] cells)
        {
            _body.Append(cssClass is null ? "<tr>" : $"<tr class=\"{cssClass}\">");
            foreach (var c in cells)
                _body.Append(IsNumber(c) ? "<td class=\"n\">" : "<td>").Append(H(c)).Append("</td>");
            _body.Append("</tr>\n");
        }

        private static bool IsNumber(string s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

        public override string ToString() =>
            "<table><tr>" + string.Concat(header.Select(h => "<th>" + H(h) + "</th>")) + "</tr>\n" + _body + "</table>\n";
    }
}
