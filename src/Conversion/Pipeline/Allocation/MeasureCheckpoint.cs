using Converter.Compute;
using Converter.Formats.Safetensors;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>What a measurement has done when a pass ends: its identity, its passes, the next one, and every KL so far.</summary>
/// <param name="Settings">What fixes the measurement's numbers (<see cref="SensitivityMeasurement.FixedOnResume"/>).</param>
/// <param name="Kl">(unit index, K, KL) of every state that reached the head.</param>
/// <param name="Seconds">The measurement's seconds so far, over every run that resumed it.</param>
public sealed record MeasureProgress(IReadOnlyDictionary<string, string> Settings, IReadOnlyList<MeasurePass> Passes, int NextPass,
    IReadOnlyList<MeasuredKl> Kl, double Seconds);

/// <summary>One measured KL: unit <paramref name="Unit"/> (its index in the measurement's unit list) quantized at <paramref name="K"/>.</summary>
public sealed record MeasuredKl(int Unit, int K, double Kl);

/// <summary>
/// The work directory's checkpoint of `trellis measure` between passes (<see cref="MeasurePasses"/>):
/// <c>ckpt/measure.json</c> (<see cref="MeasureProgress"/>), <c>ckpt/state.safetensors</c> (the calibration rows at the
/// next pass's first module) and <c>ckpt/reference.safetensors</c> (the measurement rows' original activations there,
/// one tensor per batch), rotated in whole (<see cref="CheckpointRotation"/>).
/// </summary>
public sealed class MeasureCheckpoint(string workDir)
{
    private readonly CheckpointRotation _rotation = new(workDir, "measure.json");

    private const string StateFile = "state.safetensors", ReferenceFile = "reference.safetensors";

    public bool Exists => _rotation.Exists;

    public void Save(MeasureProgress progress, CalibrationState state, IReadOnlyList<Matrix> reference) =>
        _rotation.Write(dir =>
        {
            state.Save(Path.Combine(dir, StateFile));
            var writer = new SafetensorsWriter();
            for (int b = 0; b < reference.Count; b++)
                writer.Add(PendingTensor.FromFloat32(BatchTensor(b), [reference[b].Rows, reference[b].Cols], reference[b].Data));
            writer.Write(Path.Combine(dir, ReferenceFile));
            _rotation.WriteMarker(dir, progress);
        });

    /// <summary>The newest complete checkpoint; every problem is one line naming the file.</summary>
    public (MeasureProgress Progress, CalibrationState State, IReadOnlyList<Matrix> Reference) Load()
    {
        if (!Exists)
            throw new IOException($"{workDir}: no measurement checkpoint to resume from");
        var (dir, progress) = _rotation.ReadNewest<MeasureProgress>();
        if (progress?.Settings is null || progress.Passes is null || progress.Kl is null || progress.NextPass < 1 || progress.NextPass >= progress.Passes.Count)
            throw new InvalidDataException($"{_rotation.MarkerIn(dir)}: incomplete checkpoint (no settings, passes or next pass)");
        var referencePath = Path.Combine(dir, ReferenceFile);
        var reference = new List<Matrix>();
        using (var file = SafetensorsFile.Open(referencePath))
        {
            for (int b = 0; file.Contains(BatchTensor(b)); b++)
            {
                var shape = file.Info(BatchTensor(b)).Shape;
                if (shape.Length != 2)
                    throw new SafetensorsFormatException(referencePath, BatchTensor(b), $"shape {file.Info(BatchTensor(b)).ShapeText} is not (tokens, width)");
                reference.Add(new Matrix((int)shape[0], (int)shape[1], file.ReadFloat32(BatchTensor(b))));
            }
        }
        return (progress, CalibrationState.Load(Path.Combine(dir, StateFile)), reference);
    }

    /// <summary>Removes the checkpoint once the measurement is written (and the work directory, when nothing else is in it).</summary>
    public void Delete() => _rotation.Delete();

    private static string BatchTensor(int batch) => $"reference.{batch}";
}
