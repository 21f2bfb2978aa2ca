using Converter.Models.Forward;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The work directory's checkpoint (§5.2 step 6): <c>ckpt/job.json</c> (progress) and <c>ckpt/state.safetensors</c>
/// (calibration state), and with the drift target <c>ckpt/state-original.safetensors</c> (the original model's stream),
/// rotated in whole (<see cref="CheckpointRotation"/>).
/// </summary>
public sealed class JobCheckpoint(string workDir)
{
    private readonly CheckpointRotation _rotation = new(workDir, "job.json");

    public string Current => _rotation.Current;

    public bool Exists => _rotation.Exists;

    private const string StateFile = "state.safetensors", OriginalStateFile = "state-original.safetensors";

    /// <summary>Writes a new checkpoint and rotates it in; returns the state files' size.</summary>
    /// <param name="original">The original model's stream of the drift target, or null.</param>
    public long Save(JobProgress progress, CalibrationState state, CalibrationState? original = null)
    {
        long bytes = 0;
        _rotation.Write(dir =>
        {
            var statePath = Path.Combine(dir, StateFile);
            state.Save(statePath);
            bytes = new FileInfo(statePath).Length;
            if (original is not null)
            {
                var originalPath = Path.Combine(dir, OriginalStateFile);
                original.Save(originalPath);
                bytes += new FileInfo(originalPath).Length;
            }
            _rotation.WriteMarker(dir, progress);
        });
        return bytes;
    }

    /// <summary>
    /// Loads the newest complete checkpoint (ckpt, or ckpt_old if a rotation was interrupted), its states onto
    /// <paramref name="device"/> when given; the original model's stream, when the checkpoint has one, onto <paramref name="originalDevice"/> or the host.
    /// </summary>
    public (JobProgress Progress, CalibrationState State, CalibrationState? Original) Load(IResidentForwardBackend? device = null, IResidentForwardBackend? originalDevice = null)
    {
        var (dir, progress) = _rotation.ReadNewest<JobProgress>();
        var loaded = progress ?? throw new InvalidDataException($"{_rotation.MarkerIn(dir)}: empty checkpoint");
        var originalPath = Path.Combine(dir, OriginalStateFile);
        var original = File.Exists(originalPath) ? CalibrationState.Load(originalPath, originalDevice) : null;
        return (loaded, CalibrationState.Load(Path.Combine(dir, StateFile), device), original);
    }
}
