namespace Converter.Formats.IO;

/// <summary>
/// Writes a file so that readers (and a crash) see either the old content or the complete new content, never a
/// half-written file: write a temp file in the same directory (so the rename cannot cross file systems), flush
/// it to disk, then rename it over the target. On failure the temp file is removed and the target is untouched.
/// </summary>
public static class AtomicFile
{
    /// <summary>Marker in temp file names, so a cleanup after a crash can recognise leftovers.</summary>
    public const string TempMarker = ".tmp-";

    public static void Write(string path, Action<FileStream> write)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, Path.GetFileName(full) + TempMarker + Guid.NewGuid().ToString("N"));
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            // rename(2) replaces the target atomically on POSIX. The directory entry itself is not fsynced
            // (.NET cannot open a directory handle), so after a power cut the old file may reappear, but never a torn one.
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original exception is the one worth reporting.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
