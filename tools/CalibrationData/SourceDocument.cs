using System.Security.Cryptography;
using System.Text;

namespace Converter.Tools.CalibrationData;

/// <summary>One document of a category: its text, where it came from (a path inside the source) and the source's credit.</summary>
/// <param name="Id">Stable identity inside the source (file path, type name, resource name + chunk), for ordering and the manifest.</param>
public sealed record SourceDocument(string Source, string License, string Id, string Text)
{
    public int Bytes => Encoding.UTF8.GetByteCount(Text);
}

/// <summary>Choosing documents under a byte budget, the same on every run and spread over the whole source.</summary>
public static class Budget
{
    /// <summary>Held-out text (never calibration data) per budget: this fraction of the budget, for evaluating on each kind of text.</summary>
    public const double HeldOutShare = 0.25;

    /// <summary>
    /// The documents whose ids hash lowest (SHA-256), up to <paramref name="bytes"/> UTF-8 bytes, returned in id order.
    /// Hash order rather than file order, so a budget samples a whole SDK rather than the assemblies whose names sort first.
    /// The documents next in that order, up to <see cref="HeldOutShare"/> of the budget, go to <paramref name="heldOut"/>.
    /// </summary>
    public static List<SourceDocument> Take(IEnumerable<SourceDocument> documents, long bytes, ICollection<SourceDocument>? heldOut = null)
    {
        var chosen = new List<SourceDocument>();
        long total = 0, held = 0;
        foreach (var d in documents.OrderBy(d => Hash(d.Source + "\n" + d.Id), StringComparer.Ordinal))
        {
            if (total < bytes)
            {
                chosen.Add(d);
                total += d.Bytes;
            }
            else if (heldOut is not null && held < bytes * HeldOutShare)
            {
                heldOut.Add(d);
                held += d.Bytes;
            }
            else
            {
                break;
            }
        }
        return [.. chosen.OrderBy(d => d.Id, StringComparer.Ordinal)];
    }

    /// <summary>A long text cut at line ends into pieces of at most <paramref name="maxChars"/> (a longer line is one piece).</summary>
    public static IEnumerable<string> Chunks(string text, int maxChars)
    {
        var piece = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            if (piece.Length > 0 && piece.Length + line.Length + 1 > maxChars)
            {
                yield return piece.ToString().TrimEnd();
                piece.Clear();
            }
            piece.Append(line).Append('\n');
        }
        if (piece.ToString().Trim().Length > 0)
            yield return piece.ToString().TrimEnd();
    }

    private static string Hash(string s) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s)));
}
