using System.Text.Json;
using Converter.Conversion.Reporting;
using Converter.Formats.IO;
using Converter.Models.Forward;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The work directory's checkpoint (§5.2 step 6): <c>ckpt/job.json</c> (progress) and <c>ckpt/state.safetensors</c>
/// (calibration state), and with the drift target <c>ckpt/state-original.safetensors</c> (the original model's stream). A new checkpoint is written complete into <c>ckpt_new</c>, then rotated in with renames,
/// so a kill at any moment leaves either the old or the new checkpoint whole.
/// </summary>
public sealed class JobCheckpoint(string workDir)
{
    private static JsonSerializerOptions Json => JsonOutput.Options;

    public string Current => Path.Combine(workDir, "ckpt");
    private string Next => Path.Combine(workDir, "ckpt_new");
    private string Old => Path.Combine(workDir, "ckpt_old");

    public bool Exists => File.Exists(Path.Combine(Current, "job.json")) || File.Exists(Path.Combine(Old, "job.json"));

    private const string StateFile = "state.safetensors", OriginalStateFile = "state-original.safetensors";

    /// <summary>Writes a new checkpoint and rotates it in; returns the state files' size.</summary>
    /// <param name="original">The original model's stream of the drift target, or null.</param>
    public long Save(JobProgress progress, CalibrationState state, CalibrationState? original = null)
    {
        if (Directory.Exists(Next))
            Directory.Delete(Next, recursive: true);
        Directory.CreateDirectory(Next);
        var statePath = Path.Combine(Next, StateFile);
        state.Save(statePath);
        long bytes = new FileInfo(statePath).Length;
        if (original is not null)
        {
            var originalPath = Path.Combine(Next, OriginalStateFile);
            original.Save(originalPath);
            bytes += new FileInfo(originalPath).Length;
        }
        AtomicFile.WriteAllText(Path.Combine(Next, "job.json"), JsonSerializer.Serialize(progress, Json));
        if (Directory.Exists(Old))
            Directory.Delete(Old, recursive: true);
        if (Directory.Exists(Current))
            Directory.Move(Current, Old);
        Directory.Move(Next, Current);
        if (Directory.Exists(Old))
            Directory.Delete(Old, recursive: true);
        return bytes;
    }

    /// <summary>
    /// Loads the newest complete checkpoint (ckpt, or ckpt_old if a rotation was interrupted), its states onto
    /// <paramref name="device"/> when given; the original model's stream, when the checkpoint has one, onto <paramref name="originalDevice"/> or the host.
    /// </summary>
    public (JobProgress Progress, CalibrationState State, CalibrationState? Original) Load(IResidentForwardBackend? device = null, IResidentForwardBackend? originalDevice = null)
    {
        var dir = File.Exists(Path.Combine(Current, "job.json")) ? Current : Old;
        var jobPath = Path.Combine(dir, "job.json");
        JobProgress? progress;
        try
        {
            progress = JsonSerializer.Deserialize<JobProgress>(File.ReadAllText(jobPath), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{jobPath}: corrupt checkpoint ({e.Message})");
        }
        var loaded = progress ?? throw new InvalidDataException($"{jobPath}: empty checkpoint");
        var originalPath = Path.Combine(dir, OriginalStateFile);
        var original = File.Exists(originalPath) ? CalibrationState.Load(originalPath, originalDevice) : null;
        return (loaded, CalibrationState.Load(Path.Combine(dir, StateFile), device), original);
    }
}
