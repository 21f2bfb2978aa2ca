using System.Diagnostics;
using Converter.Eval.Loading;
using Converter.Eval.Metrics;

namespace Converter.Eval.Evaluation;

/// <summary>
/// docs/exl3-format.md §6.1 (exllamav3's eval/model_diff.py) for one reference and any number of test models on the
/// same rows: all models run in lockstep module by module, each fed its own previous state; after every module
/// before the head each test model's output is compared with the reference's (<see cref="ModuleDiff"/>), after the
/// head the logits (<see cref="LogitComparison"/>). The reference runs once whatever the number of test models, and
/// only one module of one model is loaded at a time.
/// </summary>
public static class LockstepComparison
{
    /// <param name="vocabulary">The tokenizer's actual vocabulary size (the logits softmax runs over).</param>
    /// <param name="progress">Told the module about to run.</param>
    public static IReadOnlyList<ComparisonResult> Run(EvalModel reference, IReadOnlyList<EvalModel> tests, IReadOnlyList<int[]> rows,
        int topK, int vocabulary, IProgress<string>? progress = null)
    {
        foreach (var test in tests)
            CheckCompatible(reference, test);
        var referenceStream = new ModelStream(reference, rows);
        var streams = tests.Select(t => new ModelStream(t, rows)).ToList();
        var diffs = tests.Select(_ => new List<ModuleMetrics>()).ToList();
        var logits = tests.Select(_ => new LogitComparison(topK, vocabulary)).ToList();
        var seconds = new double[tests.Count];
        var modules = reference.Model.Modules;

        for (int m = 0; m < modules.Count; m++)
        {
            progress?.Report(modules[m].Name);
            referenceStream.Advance(m);
            bool head = m == modules.Count - 1;
            for (int t = 0; t < tests.Count; t++)
            {
                var clock = Stopwatch.StartNew();
                streams[t].Advance(m);
                if (head)
                {
                    for (int r = 0; r < rows.Count; r++)
                    {
                        var (a, width, ids) = streams[t].Row(r);
                        var (b, _, _) = referenceStream.Row(r);
                        logits[t].AddRow(a.Span, b.Span, width, ids);
                    }
                }
                else
                {
                    var diff = new ModuleDiff();
                    for (int r = 0; r < rows.Count; r++)
                    {
                        var (a, width, _) = streams[t].Row(r);
                        diff.AddRow(a, referenceStream.Row(r).Values, width);
                    }
                    diffs[t].Add(ModuleMetrics.From(modules[m].Name, diff));
                }
                seconds[t] += clock.Elapsed.TotalSeconds;
            }
        }
        return tests.Select((test, t) => new ComparisonResult(test.Name, test.Directory, test.Quantization, diffs[t], logits[t].Result(), seconds[t])).ToList();
    }

    /// <summary>Lockstep needs the same modules and widths; say which model differs and how.</summary>
    private static void CheckCompatible(EvalModel reference, EvalModel test)
    {
        var (a, b) = (test.Model.Spec, reference.Model.Spec);
        if (a.Layers != b.Layers || a.HiddenSize != b.HiddenSize || a.VocabSize != b.VocabSize)
        {
            throw new InvalidDataException($"{test.Directory}: {a.Layers} layers, hidden {a.HiddenSize}, vocab {a.VocabSize} " +
                $"do not match the reference {reference.Directory} ({b.Layers}, {b.HiddenSize}, {b.VocabSize}); is it a conversion of that model?");
        }
    }
}
