using System.Text.Json;

namespace Converter.Eval.Evaluation;

/// <summary>
/// Exact token ids to score, read from a JSON file: one row as a flat array of integers (<c>[1, 2, 3]</c>) or
/// several rows as an array of arrays (<c>[[1, 2, 3], [4, 5, 6]]</c>). Rows must have equal length, because they
/// are scored as one batch and their logits form one (rows, length, vocab) tensor, and at least 2 ids, because a
/// row predicts its ids 1…L−1 from the ones before. Every failure is an <see cref="InvalidDataException"/> whose
/// one-line message starts with the file's path.
/// </summary>
/// <param name="Flat">True when the file held one flat array (its logits are written as (length, vocab)).</param>
public sealed record TokenIdsFile(string Path, IReadOnlyList<int[]> Rows, bool Flat)
{
    public int Length => Rows[0].Length;

    /// <summary>Reads and checks the structure; the ids' range needs the model, see <see cref="RequireBelow"/>.</summary>
    public static TokenIdsFile Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: token ids file not found", path);
        JsonDocument document;
        try
        {
            // ReadAllText drops a UTF-8 byte-order mark, which the JSON parser would reject.
            document = JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw Bad(path, $"not valid JSON ({e.Message.ReplaceLineEndings(" ")})");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Array)
                throw Bad(path, $"expected a JSON array of token ids or an array of such arrays, found {Kind(root)}");
            if (root.GetArrayLength() == 0)
                throw Bad(path, "the array is empty; expected token ids");
            bool flat = root[0].ValueKind != JsonValueKind.Array;
            List<int[]> rows = flat
                ? [ReadRow(path, root, "")]
                : root.EnumerateArray().Select((row, r) => row.ValueKind == JsonValueKind.Array
                    ? ReadRow(path, row, $"row {r}, ")
                    : throw Bad(path, $"element {r} is {Kind(row)}, but element 0 is an array; use an array of ids or an array of arrays of ids")).ToList();
            for (int r = 0; r < rows.Count; r++)
            {
                if (rows[r].Length < 2)
                    throw Bad(path, $"{(flat ? "the row" : $"row {r}")} has {rows[r].Length} id(s); a row needs at least 2 (the first is only context)");
                if (rows[r].Length != rows[0].Length)
                    throw Bad(path, $"row {r} has {rows[r].Length} ids, row 0 has {rows[0].Length}; all rows must have the same length");
            }
            return new TokenIdsFile(path, rows, flat);
        }
    }

    /// <summary>Checks every id is in 0…<paramref name="vocabulary"/>−1; <paramref name="what"/> says where that size comes from.</summary>
    public void RequireBelow(int vocabulary, string what)
    {
        for (int r = 0; r < Rows.Count; r++)
        {
            for (int t = 0; t < Rows[r].Length; t++)
            {
                int id = Rows[r][t];
                if ((uint)id >= (uint)vocabulary)
                    throw Bad(Path, $"{Where(r, t)}id {id} is outside the vocabulary 0..{vocabulary - 1} ({what})");
            }
        }
    }

    private string Where(int row, int position) => Flat ? $"position {position}: " : $"row {row}, position {position}: ";

    private static int[] ReadRow(string path, JsonElement row, string where)
    {
        var ids = new int[row.GetArrayLength()];
        int t = 0;
        foreach (var element in row.EnumerateArray())
        {
            if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt32(out ids[t]))
            {
                throw Bad(path, element.ValueKind switch
                {
                    JsonValueKind.Array => $"{where}position {t}: a nested array; expected an integer token id (use an array of ids or an array of arrays of ids)",
                    JsonValueKind.Number when element.GetRawText().TrimStart('-').All(char.IsAsciiDigit) =>
                        $"{where}position {t}: {Shorten(element.GetRawText())} is far outside any vocabulary",
                    _ => $"{where}position {t}: {Shorten(element.GetRawText())} is not an integer token id",
                });
            }
            t++;
        }
        return ids;
    }

    private static string Kind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    /// <summary>A long string or number in a message is cut, so the message stays one readable line.</summary>
    private static string Shorten(string text)
    {
        text = text.ReplaceLineEndings(" ");
        return text.Length <= 40 ? text : text[..40] + "…";
    }

    private static InvalidDataException Bad(string path, string problem) => new($"{path}: {problem}");
}
