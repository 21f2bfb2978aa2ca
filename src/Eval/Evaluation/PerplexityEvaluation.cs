using Converter.Eval.Loading;
using Converter.Eval.Metrics;

namespace Converter.Eval.Evaluation;

/// <summary>Perplexity of one model on the evaluation rows (the `ppl` command).</summary>
/// <param name="Tokens">Tokens run through the model (rows × length).</param>
/// <param name="Scored">Tokens predicted and scored (rows × (length − 1)).</param>
public sealed record PerplexityResult(double Ppl, int Rows, long Tokens, long Scored, double Seconds);

/// <summary>
/// exllamav3's eval/ppl.py default mode (docs/exl3-format.md §6.2) for a plain or a quantized model: each row scored on
/// its own, logits[:-1] against ids[1:], PPL = exp(−Σ log p / count), streaming one module at a time.
/// </summary>
public static class PerplexityEvaluation
{
    /// <param name="withLogits">Called once every row's logits are computed, before they are released (e.g. to write them).</param>
    public static PerplexityResult Run(EvalModel model, IReadOnlyList<int[]> rows, int vocabulary, IProgress<string>? progress = null,
        Action<ModelStream>? withLogits = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var stream = new ModelStream(model, rows);
        for (int m = 0; m < model.Model.Modules.Count; m++)
        {
            progress?.Report(model.Model.Modules[m].Name);
            stream.Advance(m);
        }
        withLogits?.Invoke(stream);
        var ppl = new Perplexity(vocabulary);
        for (int r = 0; r < rows.Count; r++)
        {
            var (logits, width, ids) = stream.Row(r);
            ppl.AddRow(logits.Span, width, ids);
        }
        return new PerplexityResult(ppl.Value, rows.Count, rows.Sum(r => (long)r.Length), ppl.Count, clock.Elapsed.TotalSeconds);
    }
}
