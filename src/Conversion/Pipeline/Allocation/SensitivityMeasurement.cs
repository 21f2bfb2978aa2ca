using System.Diagnostics;
using Converter.Conversion.Reporting;
using Converter.Eval.Evaluation;
using Converter.Eval.Metrics;
using Converter.Formats.HuggingFace;
using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.Formats.Tokenizers;
using Converter.Models;
using Converter.Models.Modules;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>What to measure besides the quantizer's settings: the candidate K, the units and the rows the KL is taken over.</summary>
/// <param name="Text">Text of the measurement rows (consecutive rows from its start, as eval cuts them).</param>
public sealed record MeasureOptions(IReadOnlyList<int> Candidates, MeasureGranularity Granularity, TextSource Text, int Rows, int Length);

/// <summary>
/// `trellis measure`: for every measured unit (<see cref="MeasureGranularity.Units"/> of
/// <see cref="BitAllocation.Targets"/>) and candidate K, the KL of the model's output from the original's when that
/// unit alone is quantized at K. One pass over the modules, each loaded once: the calibration rows run through the
/// original model to give each linear its Hessian (as in a conversion); every linear is quantized at each K (once per
/// K whatever the granularity), and every (unit, K) runs the measurement rows through the module with the unit's
/// quantized weights swapped in, and from there through the rest of the original model alongside the reference; at the
/// head the logits are compared with the reference's. Finer units cost only more of these forwards (7 per llama layer
/// and K by tensor, 4 by group). Memory: one state of the measurement rows per (unit, K) still on its way to the head
/// (rows × length × hidden floats each).
/// </summary>
public sealed class SensitivityMeasurement(ConvertSettings requested, MeasureOptions options, ConversionSession session)
{
    /// <summary>A copy of the measurement rows' activations, perturbed at one unit (its index in the unit list) and K.</summary>
    private sealed class Perturbed(int unit, int bits, SequenceBatch[] batches)
    {
        public int Unit { get; } = unit;
        public int Bits { get; } = bits;
        public SequenceBatch[] Batches { get; set; } = batches;
    }

    public Measurement Run()
    {
        var clock = Stopwatch.StartNew();
        var (settings, config) = ConversionPipeline.Settle(requested);
        using var backend = ComputeBackend.Open(settings.Device, session.Log, "measure");
        using var source = SourceCheckpoint.Open(settings.ModelDir, config.Json);
        var model = TransformerModel.FromConfig(config, backend.Algebra, backend.Blocks);
        var units = options.Granularity.Units(BitAllocation.Targets(model));
        var unitOf = units.SelectMany((members, u) => members.Select(t => (t.Name, u))).ToDictionary(x => x.Name, x => x.u);
        var tokenizer = Tokenizer.FromFile(Path.Combine(settings.ModelDir, "tokenizer.json"));
        var rows = EvalRows.Build(tokenizer, options.Text.ReadAll("measurement text"), options.Text.Name, options.Rows, options.Length);
        int vocabulary = Math.Min(tokenizer.VocabSize, model.Spec.VocabSize);
        var state = new CalibrationState(ConversionPipeline.BuildCalibrationRows(settings, config, session.Log), null, []);
        var converter = new ModuleConverter(settings, source, model.Spec.Names, session.Codebooks, new Dictionary<string, int>(), backend);

        int perBatch = Math.Max(1, ModelStream.BatchTokens / options.Length);
        var reference = rows.Chunk(perBatch).Select(chunk => SequenceBatch.FromTokens(chunk)).ToArray();
        var perturbed = new List<Perturbed>();
        var kl = units.Select(_ => new SortedDictionary<int, double>()).ToArray();
        session.Log.WriteLine($"measure: {settings.ModelDir}, K ∈ {{{string.Join(", ", options.Candidates)}}} for {units.Count} units ({options.Granularity.Name()}), " +
            $"calibration {settings.CalVolume.Rows}×{settings.CalVolume.Cols} of {settings.CalData.Name}, KL over {options.Rows} rows × {options.Length} tokens of {options.Text}");

        session.Progress.Run("measure", model.Modules.Count, steps =>
        {
            foreach (var module in model.Modules)
            {
                steps.Step(module.Name);
                module.Load(source);
                try
                {
                    if (module is LmHeadModule)
                    {
                        var logits = reference.Select(b => module.Forward(b)).ToArray();
                        foreach (var p in perturbed)
                            kl[p.Unit][p.Bits] = Kl(module, p.Batches, logits, vocabulary);
                        perturbed.Clear();
                        continue;
                    }
                    // The states perturbed here have been through this module already; the older ones and the reference go through it now.
                    var created = module.LinearGroups.Count > 0 ? PerturbAt(module, state, reference, converter, backend, units, unitOf, steps) : [];
                    reference = reference.Select(b => module.Forward(b)).ToArray();
                    foreach (var p in perturbed)
                        p.Batches = p.Batches.Select(b => module.Forward(b)).ToArray();
                    perturbed.AddRange(created);
                    state.Advance(module);
                }
                finally
                {
                    module.Release();
                }
                HeapReuse.ReleaseFinishedStep();
            }
            return true;
        });

        var measured = units.Select((members, u) => new MeasuredUnit(members[0].Layer, members[0].Group, members.Sum(t => t.Numel),
            members.Select(t => t.Name).ToList(), kl[u])).ToList();
        return new Measurement(Measurement.FormatName, Measurement.CurrentVersion, Path.GetFullPath(settings.ModelDir), ModelFingerprint.Compute(settings.ModelDir),
            config.ArchitectureNames.FirstOrDefault() ?? config.ModelType ?? "unknown", model.Layers.Count, options.Candidates.ToList(),
            settings.Codebook.ToString(), settings.CalData.Name, settings.CalVolume.Rows, settings.CalVolume.Cols, settings.Seed, options.Text.Name, options.Rows, options.Length, options.Granularity, measured,
            Math.Round(clock.Elapsed.TotalSeconds, 1));
    }

    /// <summary>
    /// Captures the module's Hessians from the calibration rows, then for every allocation group in it and every
    /// candidate K: quantizes the group's linears together (as a conversion does, and as many in flight), and for every
    /// measured unit of the group runs the measurement rows' current activations through the module with the unit's
    /// quantized weights swapped in, then puts the original weights back.
    /// </summary>
    private List<Perturbed> PerturbAt(ModelModule module, CalibrationState state, SequenceBatch[] input, ModuleConverter converter, ComputeBackend backend,
        IReadOnlyList<List<AllocationTarget>> units, IReadOnlyDictionary<string, int> unitOf, IStepProgress steps)
    {
        using var capture = new HessianCapture(backend.Algebra);
        state.Forward(module, state.GoodRows.ToList(), capture, keepRows: 0);
        var hessians = module.LinearGroups.ToDictionary(g => g, g => converter.FinalizeHessian(g, capture, steps));
        var result = new List<Perturbed>();
        // A unit never spans two allocation groups (MeasureGranularity.Units), so each group's units are measured from its quantized linears.
        foreach (var allocation in module.LinearGroups.SelectMany(g => g.Linears.Select(l => (Group: g, Linear: l))).GroupBy(x => units[unitOf[x.Linear.Name]][0].Group))
        {
            var members = allocation.ToList();
            foreach (int k in options.Candidates)
            {
                var clock = Stopwatch.StartNew();
                var quantized = new Converter.Compute.Matrix[members.Count];
                Parallel.For(0, members.Count, new ParallelOptions { MaxDegreeOfParallelism = converter.LinearsInFlightFor(members.Count) }, i =>
                    quantized[i] = converter.Reconstruct(converter.QuantizeAt(members[i].Linear, hessians[members[i].Group], k), members[i].Linear));
                foreach (var unit in Enumerable.Range(0, members.Count).GroupBy(i => unitOf[members[i].Linear.Name]))
                {
                    var originals = unit.ToDictionary(i => i, i => members[i].Linear.Weight);
                    foreach (int i in unit)
                        members[i].Linear.ReplaceWeight(quantized[i]);
                    try
                    {
                        result.Add(new Perturbed(unit.Key, k, input.Select(b => module.Forward(b)).ToArray()));
                    }
                    finally
                    {
                        foreach (int i in unit)
                            members[i].Linear.ReplaceWeight(originals[i]);
                    }
                }
                steps.Log($"  {module.Name} {allocation.Key}: K={k} quantized and measured ({clock.Elapsed.TotalSeconds:F1} s)");
            }
        }
        return result;
    }

    /// <summary>Mean KL(reference ‖ perturbed) over every position of every row, over the tokenizer's vocabulary.</summary>
    private static double Kl(ModelModule head, SequenceBatch[] batches, SequenceBatch[] reference, int vocabulary)
    {
        var comparison = new LogitComparison(1, vocabulary);
        for (int b = 0; b < batches.Length; b++)
        {
            var logits = head.Forward(batches[b]).RequireValues(head.Name);
            var refLogits = reference[b].RequireValues(head.Name);
            int tokens = batches[b].Tokens, width = logits.Cols;
            for (int r = 0; r < batches[b].Rows; r++)
            {
                comparison.AddRow(logits.Data.AsSpan(r * tokens * width, tokens * width), refLogits.Data.AsSpan(r * tokens * width, tokens * width), width,
                    batches[b].TokenIds.AsSpan(r * tokens, tokens));
            }
        }
        return comparison.Result().KlAb;
    }
}
