using System.Diagnostics;
using Converter.Conversion.Reporting;
using Converter.Eval.Evaluation;
using Converter.Eval.Metrics;
using Converter.Formats.HuggingFace;
using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.Formats.Tokenizers;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Regularize.Quantization;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>What to measure besides the quantizer's settings: the candidate K, the units and the rows the KL is taken over.</summary>
/// <param name="Text">Text of the measurement rows (consecutive rows from its start, as eval cuts them).</param>
/// <param name="Compensation">Whether the later sublayers of a unit's block are refitted around its error before its KL is taken.</param>
/// <param name="CompensationRows">Calibration rows the refits are captured from (the first of the good rows); 0: enough for the widest refitted input (<see cref="SensitivityMeasurement.CompensationRows"/>).</param>
/// <param name="StateMemoryBytes">Bytes the perturbed states may take at once (<see cref="MeasurePasses"/>); 0: half the free host memory.</param>
/// <param name="Resume">Continue from the work directory's checkpoint (<see cref="MeasureCheckpoint"/>).</param>
/// <param name="StopAfterPasses">Stop after this many passes as if interrupted (for testing resume).</param>
public sealed record MeasureOptions(IReadOnlyList<int> Candidates, MeasureGranularity Granularity, TextSource Text, int Rows, int Length,
    MeasureCompensation Compensation = MeasureCompensation.Block, int CompensationRows = 0, long StateMemoryBytes = 0, bool Resume = false, int? StopAfterPasses = null);

/// <summary>
/// `trellis measure`: for every measured unit (<see cref="MeasureGranularity.Units"/> of
/// <see cref="BitAllocation.Targets"/>) and candidate K, the KL of the model's output from the original's when that
/// unit alone is quantized at K. One pass over the modules when its states fit (else several,
/// <see cref="MeasurePasses"/>): the calibration rows run through the original model to give each linear its Hessian (as in a conversion); every linear is quantized at each K (once per
/// K whatever the granularity), and every (unit, K) runs the measurement rows through the module with the unit's
/// quantized weights swapped in, and from there through the rest of the original model alongside the reference; at the
/// head the logits are compared with the reference's. Finer units cost only more of these forwards (7 per llama layer
/// and K by tensor, 4 by group). With <see cref="MeasureCompensation.Block"/> the later sublayers of the unit's block
/// are refitted around its error before the measurement rows leave the module (<see cref="Refit"/>). Memory: one state
/// of the measurement rows per (unit, K) of the pass still on its way to the head (rows × length × hidden floats
/// each). Between passes a checkpoint is written (<see cref="MeasureCheckpoint"/>), from which --resume continues.
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

    /// <summary>
    /// Measures every unit at every candidate K and returns the measurement, or null when
    /// <see cref="MeasureOptions.StopAfterPasses"/> stopped it (its checkpoint resumes it).
    /// </summary>
    public Measurement? Run()
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
        var converter = new ModuleConverter(settings, source, model.Spec.Names, session.Codebooks, new Dictionary<string, int>(), backend);

        int perBatch = Math.Max(1, ModelStream.BatchTokens / options.Length);
        var tokens = rows.Chunk(perBatch).Select(chunk => SequenceBatch.FromTokens(chunk)).ToArray();
        var statesPerModule = model.Modules.Select(m => m.Linears.Select(l => unitOf.GetValueOrDefault(l.Name, -1)).Where(u => u >= 0).Distinct().Count() * options.Candidates.Count).ToList();
        long bytesPerState = (long)rows.Count * options.Length * model.Spec.HiddenSize * sizeof(float);
        var kl = units.Select(_ => new SortedDictionary<int, double>()).ToArray();
        var fingerprint = ModelFingerprint.Compute(settings.ModelDir);
        var fixedSettings = FixedOnResume(settings, fingerprint);
        var checkpoint = new MeasureCheckpoint(settings.WorkDir);
        IReadOnlyList<MeasurePass> passes;
        int firstPass;
        double secondsBefore = 0;
        CalibrationState state;
        SequenceBatch[] reference;
        if (options.Resume)
        {
            var (progress, loaded, values) = checkpoint.Load();
            if (ConvertSettings.FirstDifference(fixedSettings, progress.Settings) is (var key, var was, var now))
            {
                throw new InvalidSettingsException($"--resume: {key} was {(was is null ? "not set" : $"'{was}'")} in the interrupted measurement, now " +
                    $"{(now is null ? "the default" : $"'{now}'")}; it cannot change on resume");
            }
            if (values.Count != tokens.Length || values.Where((v, b) => v.Rows != tokens[b].Rows * tokens[b].Tokens).Any())
                throw new InvalidDataException($"{settings.WorkDir}: the checkpoint's reference rows are not this measurement's {rows.Count} × {options.Length} tokens");
            (passes, firstPass, state, secondsBefore) = (progress.Passes, progress.NextPass, loaded, progress.Seconds);
            reference = tokens.Select((b, i) => b.WithValues(values[i])).ToArray();
            foreach (var m in progress.Kl)
                kl[m.Unit][m.K] = m.Kl;
            session.Log.WriteLine($"measure: resuming at pass {firstPass + 1} of {passes.Count} (module {passes[firstPass].First}), {progress.Kl.Count} KL measured before");
        }
        else
        {
            if (checkpoint.Exists)
                session.Log.WriteLine($"measure: {settings.WorkDir} holds an interrupted measurement; starting over (--resume continues it)");
            long budget = options.StateMemoryBytes > 0 ? options.StateMemoryBytes : DefaultStateBudget(settings, model.Spec.HiddenSize);
            passes = MeasurePasses.Plan(statesPerModule, bytesPerState, budget);
            (firstPass, state, reference) = (0, new CalibrationState(ConversionPipeline.BuildCalibrationRows(settings, config, session.Log), null, []), tokens);
        }
        session.Log.WriteLine($"measure: {settings.ModelDir}, K ∈ {{{string.Join(", ", options.Candidates)}}} for {units.Count} units ({options.Granularity.Name()}), " +
            $"calibration {settings.CalVolume.Rows}×{settings.CalVolume.Cols} of {settings.CalData.Name}, KL over {options.Rows} rows × {options.Length} tokens of {options.Text}");
        session.Log.WriteLine($"measure: {statesPerModule.Sum()} states of the measurement rows, {HumanFormat.Bytes(bytesPerState)} each, " +
            (passes.Count == 1 ? $"{HumanFormat.Bytes(statesPerModule.Sum() * bytesPerState)} held at once: one pass"
                : $"in {passes.Count} passes of at most {HumanFormat.Bytes(MeasurePasses.PeakBytes(passes, statesPerModule, bytesPerState))} (modules " +
                  string.Join(", ", passes.Select(p => $"{p.First}–{p.Last}")) + "; the modules after a pass are loaded again by each later one; --state-memory)"));

        for (int p = firstPass; p < passes.Count; p++)
        {
            reference = RunPass(passes[p], p, passes.Count, model, source, state, reference, converter, backend, units, unitOf, kl, vocabulary);
            if (p + 1 == passes.Count)
                break;
            var progress = new MeasureProgress(fixedSettings, passes, p + 1,
                kl.SelectMany((byK, u) => byK.Select(x => new MeasuredKl(u, x.Key, x.Value))).ToList(), secondsBefore + clock.Elapsed.TotalSeconds);
            checkpoint.Save(progress, state, reference.Select(b => b.RequireValues("measure")).ToList());
            if (options.StopAfterPasses == p + 1)
            {
                session.Log.WriteLine($"measure: stopped after pass {p + 1} of {passes.Count}; continue with --resume");
                return null;
            }
        }
        checkpoint.Delete();

        var measured = units.Select((members, u) => new MeasuredUnit(members[0].Layer, members[0].Group, members.Sum(t => t.Numel),
            members.Select(t => t.Name).ToList(), kl[u])).ToList();
        return new Measurement(Measurement.FormatName, Measurement.CurrentVersion, Path.GetFullPath(settings.ModelDir), fingerprint,
            config.ArchitectureNames.FirstOrDefault() ?? config.ModelType ?? "unknown", model.Layers.Count, options.Candidates.ToList(),
            settings.Codebook.ToString(), settings.CalData.Name, settings.CalVolume.Rows, settings.CalVolume.Cols, settings.Seed, options.Text.Name, options.Rows, options.Length, options.Granularity, measured,
            Math.Round(secondsBefore + clock.Elapsed.TotalSeconds, 1), options.Compensation);
    }

    /// <summary>
    /// One pass from its first module to the head: in its own modules the Hessians are captured from the calibration
    /// rows and every unit is perturbed at every K (<see cref="PerturbAt"/>), and the calibration rows advance; every
    /// module from the first on runs the reference and the perturbed states, and at the head each perturbed state's KL
    /// is taken. Returns the reference rows as they left the pass's last module (where the next pass starts).
    /// </summary>
    private SequenceBatch[] RunPass(MeasurePass pass, int index, int count, TransformerModel model, ITensorReader source, CalibrationState state,
        SequenceBatch[] reference, ModuleConverter converter, ComputeBackend backend, IReadOnlyList<List<AllocationTarget>> units,
        IReadOnlyDictionary<string, int> unitOf, SortedDictionary<int, double>[] kl, int vocabulary)
    {
        var perturbed = new List<Perturbed>();
        var next = reference;
        session.Progress.Run(count == 1 ? "measure" : $"measure pass {index + 1}/{count}", model.Modules.Count - pass.First, steps =>
        {
            for (int m = pass.First; m < model.Modules.Count; m++)
            {
                var module = model.Modules[m];
                bool own = m <= pass.Last;
                steps.Step(module.Name);
                module.Load(source);
                try
                {
                    if (module is LmHeadModule)
                    {
                        var logits = new ReferenceKl(vocabulary);
                        foreach (var b in reference)
                        {
                            var values = module.Forward(b).RequireValues(module.Name);
                            logits.Add(values.Data, values.Cols);
                        }
                        foreach (var p in perturbed)
                            kl[p.Unit][p.Bits] = logits.Mean(b => module.Forward(p.Batches[b]).RequireValues(module.Name).Data);
                        perturbed.Clear();
                        continue;
                    }
                    // The states perturbed here have been through this module already; the older ones and the reference go through it now.
                    var created = own && module.LinearGroups.Count > 0 ? PerturbAt(module, state, reference, converter, backend, units, unitOf, steps) : [];
                    reference = reference.Select(b => module.Forward(b)).ToArray();
                    foreach (var p in perturbed)
                        p.Batches = p.Batches.Select(b => module.Forward(b)).ToArray();
                    perturbed.AddRange(created);
                    if (own)
                        state.Advance(module);
                    if (m == pass.Last)
                        next = reference;
                }
                finally
                {
                    module.Release();
                }
                HeapReuse.ReleaseFinishedStep();
            }
            return true;
        });
        return next;
    }

    /// <summary>
    /// Half the host memory free at the start, less the calibration rows' states (held beside the perturbed ones), and
    /// at least 1 GiB: the rest is the modules' weights, Hessians and the quantizer's working set.
    /// </summary>
    private static long DefaultStateBudget(ConvertSettings settings, int hidden) =>
        Math.Max(1L << 30, MachineResources.AvailableMemoryBytes() / 2 - HiddenStates.Bytes(settings.CalVolume.Rows, settings.CalVolume.Cols, hidden));

    /// <summary>What fixes a measurement's numbers: the model, the quantizer's settings (as a conversion's resume keys) and the measurement's own.</summary>
    public IReadOnlyDictionary<string, string> FixedOnResume(ConvertSettings settings, string fingerprint)
    {
        var keys = new SortedDictionary<string, string>(settings.FixedOnResume().ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            ["candidates"] = string.Join(',', options.Candidates),
            ["granularity"] = options.Granularity.Name(),
            ["compensation"] = options.Compensation.ToString().ToLowerInvariant(),
            ["compensation_rows"] = options.CompensationRows.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["measure_text"] = options.Text.Name,
            ["measure_rows"] = options.Rows.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["measure_length"] = options.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["model_fingerprint"] = fingerprint,
        };
        keys.Remove("bits");
        return keys;
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
                        linear.ReplaceWeight(new Compute.Matrix(linear.OutFeatures, linear.InFeatures, correction.Target(group.MemberOf(linear), linear.Weight.Data, linear.OutFeatures, backend.Algebra)));
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
}
