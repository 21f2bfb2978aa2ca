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
using Converter.Regularize.Quantization;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>What to measure besides the quantizer's settings: the candidate K, the units and the rows the KL is taken over.</summary>
/// <param name="Text">Text of the measurement rows (consecutive rows from its start, as eval cuts them).</param>
/// <param name="Compensation">Whether the later sublayers of a unit's block are refitted around its error before its KL is taken.</param>
/// <param name="CompensationRows">Calibration rows the refits are captured from (the first of the good rows); 0: enough for the widest refitted input (<see cref="SensitivityMeasurement.CompensationRows"/>).</param>
public sealed record MeasureOptions(IReadOnlyList<int> Candidates, MeasureGranularity Granularity, TextSource Text, int Rows, int Length,
    MeasureCompensation Compensation = MeasureCompensation.Block, int CompensationRows = 0);

/// <summary>
/// `trellis measure`: for every measured unit (<see cref="MeasureGranularity.Units"/> of
/// <see cref="BitAllocation.Targets"/>) and candidate K, the KL of the model's output from the original's when that
/// unit alone is quantized at K. One pass over the modules, each loaded once: the calibration rows run through the
/// original model to give each linear its Hessian (as in a conversion); every linear is quantized at each K (once per
/// K whatever the granularity), and every (unit, K) runs the measurement rows through the module with the unit's
/// quantized weights swapped in, and from there through the rest of the original model alongside the reference; at the
/// head the logits are compared with the reference's. Finer units cost only more of these forwards (7 per llama layer
/// and K by tensor, 4 by group). With <see cref="MeasureCompensation.Block"/> the later sublayers of the unit's block
/// are refitted around its error before the measurement rows leave the module (<see cref="Refit"/>). Memory: one state
/// of the measurement rows per (unit, K) still on its way to the head (rows × length × hidden floats each).
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
            Math.Round(clock.Elapsed.TotalSeconds, 1), options.Compensation);
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
        var originalWeights = new OriginalWeights(module.Linears);
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
                        using var refitted = options.Compensation == MeasureCompensation.Block
                            ? Refit(module, members[unit.First()].Group.Sublayer, state, originalWeights, converter, backend)
                            : null;
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

    /// <summary>
    /// <see cref="MeasureCompensation.Block"/>: with the unit's quantized weights in, every later sublayer of the block,
    /// one at a time and in order, takes the drift target a conversion would give it (<see cref="DriftCorrection"/>,
    /// at the settings' strength): its Hessian and cross sum captured from the calibration rows run through the
    /// perturbed block and through the original one, its weights replaced by T = W + W·Gᵀ (unquantized, so the refit
    /// compensates as much as the target can). Disposing the result puts the original weights back.
    /// </summary>
    private IDisposable Refit(ModelModule module, int afterSublayer, CalibrationState state, OriginalWeights originals, ModuleConverter converter, ComputeBackend backend)
    {
        var replaced = new Dictionary<Linear, Compute.Matrix>();
        var later = module.LinearGroups.Where(g => g.Sublayer > afterSublayer).ToList();
        if (later.Count == 0)
            return new WeightRestore(replaced);
        var rows = state.GoodRows.Take(CompensationRows(options.CompensationRows, later.Max(g => g.InFeatures), state.Tokens)).ToList();
        var quiet = new QuietSteps();
        try
        {
            foreach (var stage in later.GroupBy(g => g.Sublayer).OrderBy(g => g.Key))
            {
                using var capture = new HessianCapture(backend.Algebra, stage.ToHashSet());
                using var drift = new DriftCapture(capture, backend.Algebra);
                foreach (var chunk in rows.Chunk(CalibrationState.ChunkRows(state.Tokens)))
                {
                    using (originals.SwappedIn())
                        state.Forward(module, chunk, drift.Original, keepRows: 0);
                    state.Forward(module, chunk, drift, keepRows: 0);
                }
                foreach (var group in stage)
                {
                    using var hessian = converter.FinalizeHessian(group, capture, quiet);
                    DriftCorrection? correction;
                    try
                    {
                        // The default quantizer's strength (a measurement has no quantizer options).
                        correction = DriftCorrection.For(hessian, drift.For(group), requested.Tuning.DriftTarget, backend.Algebra);
                    }
                    catch (InvalidOperationException)
                    {
                        // A Hessian that does not factor: the conversion's LDLQ would retry with more damping; this
                        // group is simply not refitted (the unit's KL is measured a little high).
                        correction = null;
                    }
                    if (correction is null)
                        continue;
                    using var kept = correction;
                    foreach (var linear in group.Linears)
                    {
                        replaced.TryAdd(linear, linear.Weight);
                        linear.ReplaceWeight(new Compute.Matrix(linear.OutFeatures, linear.InFeatures, correction.Target(linear.Weight.Data, linear.OutFeatures, backend.Algebra)));
                    }
                }
            }
        }
        catch
        {
            new WeightRestore(replaced).Dispose();
            throw;
        }
        return new WeightRestore(replaced);
    }

    /// <summary>
    /// Calibration rows a block refit is captured from: <paramref name="requested"/> when given (above 0), else enough
    /// for <see cref="RefitTokensPerInput"/> tokens per input of the widest refitted linear, at least
    /// <see cref="MinimumRefitRows"/> (the caller takes at most the good rows there are).
    /// </summary>
    public static int CompensationRows(int requested, int widestInput, int tokensPerRow) =>
        requested > 0 ? requested : Math.Max(MinimumRefitRows, (int)Math.Ceiling((double)RefitTokensPerInput * widestInput / tokensPerRow));

    /// <summary>
    /// A refit is a least-squares fit with as many unknowns per output as inputs: from fewer tokens than inputs it fits
    /// the rows' noise (rand-llama31's down_proj refitted from 512 tokens for 768 inputs raised up_proj's measured KL
    /// by half instead of lowering it). 8 per input keeps the fit's own error small.
    /// </summary>
    public const int RefitTokensPerInput = 8;

    /// <summary>32 × 512 tokens: tiny-llama's refits from these moved its allocations as described in docs/benchmarks.md.</summary>
    public const int MinimumRefitRows = 32;

    /// <summary>The refits' Hessians would log a line each per unit and K.</summary>
    private sealed class QuietSteps : IStepProgress
    {
        public void Step(string description)
        {
        }

        public void Log(string line)
        {
        }
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
