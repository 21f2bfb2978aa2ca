using System.Text.Json;
using Converter.Conversion.Reporting;
using Converter.Formats.IO;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// A work directory's checkpoint folder and how a new one replaces it: the new checkpoint is written complete into
/// <c>ckpt_new</c>, then rotated in with renames (<c>ckpt</c> → <c>ckpt_old</c>, <c>ckpt_new</c> → <c>ckpt</c>), so a
/// kill at any moment leaves either the old or the new checkpoint whole. A checkpoint is complete when its marker file
/// (its progress, <see cref="WriteMarker"/>) exists, written last.
/// </summary>
public sealed class CheckpointRotation(string workDir, string marker)
{
    public string Current => Path.Combine(workDir, "ckpt");
    private string Next => Path.Combine(workDir, "ckpt_new");
    private string Old => Path.Combine(workDir, "ckpt_old");

    public bool Exists => File.Exists(Path.Combine(Current, marker)) || File.Exists(Path.Combine(Old, marker));

    /// <summary>The newest complete checkpoint's folder (ckpt, or ckpt_old if a rotation was interrupted).</summary>
    public string Newest => File.Exists(Path.Combine(Current, marker)) ? Current : Old;

    /// <summary>Lets <paramref name="writeInto"/> fill a fresh folder (its marker last, <see cref="WriteMarker"/>), then rotates it in.</summary>
    public void Write(Action<string> writeInto)
    {
        if (Directory.Exists(Next))
            Directory.Delete(Next, recursive: true);
        Directory.CreateDirectory(Next);
        writeInto(Next);
        if (!File.Exists(Path.Combine(Next, marker)))
            throw new InvalidOperationException($"{Next}: the checkpoint was written without its {marker}");
        if (Directory.Exists(Old))
            Directory.Delete(Old, recursive: true);
        if (Directory.Exists(Current))
            Directory.Move(Current, Old);
        Directory.Move(Next, Current);
        if (Directory.Exists(Old))
            Directory.Delete(Old, recursive: true);
    }

    /// <summary>Writes <paramref name="progress"/> as the marker of the folder <see cref="Write"/> gave (last, as JSON).</summary>
    public void WriteMarker<T>(string dir, T progress) => AtomicFile.WriteAllText(MarkerIn(dir), JsonSerializer.Serialize(progress, JsonOutput.Options));

    /// <summary>The newest complete checkpoint's folder and its marker's progress; a marker that does not parse is one line naming it.</summary>
    public (string Dir, T? Progress) ReadNewest<T>()
    {
        var dir = Newest;
        try
        {
            return (dir, JsonSerializer.Deserialize<T>(File.ReadAllText(MarkerIn(dir)), JsonOutput.Options));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{MarkerIn(dir)}: corrupt checkpoint ({e.Message})");
        }
    }

    /// <summary>The marker's path in checkpoint folder <paramref name="dir"/>.</summary>
    public string MarkerIn(string dir) => Path.Combine(dir, marker);

    /// <summary>Removes every checkpoint folder, and the work directory when nothing else is left in it.</summary>
    public void Delete()
    {
        foreach (var dir in new[] { Next, Current, Old })
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
        if (Directory.Exists(workDir) && !Directory.EnumerateFileSystemEntries(workDir).Any())
            Directory.Delete(workDir);
    }
}
