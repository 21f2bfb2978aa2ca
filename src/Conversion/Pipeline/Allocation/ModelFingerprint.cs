using System.Security.Cryptography;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>
/// A cheap identity of a model directory for matching a measurement to the model it was made on: SHA-256 over
/// config.json and, per *.safetensors file in name order, its length and its first and last 64 KiB (the header and
/// the first and last weights). Two models of one shape (the rand-* fixtures share theirs) differ in it; copying or
/// moving the directory does not change it.
/// </summary>
public static class ModelFingerprint
{
    private const int Window = 64 << 10;

    public static string Compute(string modelDir)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(File.ReadAllBytes(Path.Combine(modelDir, "config.json")));
        var buffer = new byte[Window];
        foreach (var file in Directory.EnumerateFiles(modelDir, "*.safetensors").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal))
        {
            using var stream = File.OpenRead(file);
            sha.AppendData(BitConverter.GetBytes(stream.Length));
            int head = stream.ReadAtLeast(buffer, (int)Math.Min(Window, stream.Length), throwOnEndOfStream: false);
            sha.AppendData(buffer, 0, head);
            if (stream.Length > Window)
            {
                stream.Seek(-Math.Min(Window, stream.Length - Window), SeekOrigin.End);
                int tail = stream.ReadAtLeast(buffer, (int)Math.Min(Window, stream.Length - Window), throwOnEndOfStream: false);
                sha.AppendData(buffer, 0, tail);
            }
        }
        return Convert.ToHexString(sha.GetHashAndReset())[..32].ToLowerInvariant();
    }
}
