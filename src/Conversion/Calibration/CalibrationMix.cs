namespace Converter.Conversion.Calibration;

/// <summary>A category of the default mix and its share of the rows, in percent.</summary>
public sealed record CalibrationCategory(string Name, int Percent);

/// <summary>The rows of a mix and how many each category got, in category order.</summary>
public sealed record MixedRows(IReadOnlyList<int[]> Rows, IReadOnlyList<(string Category, int Rows)> Counts, IReadOnlyList<string> Notes);

/// <summary>
/// The default calibration mix (after exllamav3's: mostly English prose, then code, other languages, technical text,
/// and rows of random token ids that reach embedding rows no text does), plus dialogue through the chat template,
/// which exllamav3 lacks. Rows are apportioned to categories by largest remainder, documents of each category taken
/// in a seeded shuffle, and the rows laid out category by category with prose first, so the first rows, whose outputs
/// measure each module's error (ModuleConverter.ReferenceRows), are English prose as in exllamav3 (c4 first).
/// </summary>
public static class CalibrationMix
{
    public const string RandomCategory = "random";

    /// <summary>
    /// Shares in percent. exllamav3 (weights 20 c4, 50 wiki, 5 tiny, 20 code, 10 multilingual, 10 technical, 20 random)
    /// gives prose 56 %, code 15 %, multilingual and technical 7 % each, random 15 %; we give prose less for the
    /// dialogue rows, since chat models are run on chat-formatted text, and non-English text more, for more scripts.
    /// </summary>
    public static readonly IReadOnlyList<CalibrationCategory> Categories =
    [
        new("prose", 35),
        new("code", 15),
        new("technical", 10),
        new("multilingual", 12),
        new("dialogue", 13),
        new(RandomCategory, 15),
    ];

    /// <summary>Rows per category: the largest-remainder split of <paramref name="rows"/> by <see cref="Categories"/>' shares (ties to the earlier category).</summary>
    public static IReadOnlyList<(string Category, int Rows)> Apportion(int rows)
    {
        int total = Categories.Sum(c => c.Percent);
        var floors = Categories.Select(c => (long)rows * c.Percent / total).Select(v => (int)v).ToArray();
        int left = rows - floors.Sum();
        var order = Enumerable.Range(0, Categories.Count)
            .OrderByDescending(i => (long)rows * Categories[i].Percent % total).ThenBy(i => i).ToList();
        for (int k = 0; k < left; k++)
            floors[order[k]]++;
        return [.. Categories.Select((c, i) => (c.Name, floors[i]))];
    }

    /// <param name="documents">The text categories' documents by name (<see cref="BuiltInCalibrationSet.Load"/>).</param>
    /// <param name="vocab">Random token ids are drawn from 0 .. vocab−1 (the tokenizer's and the model's vocabulary, whichever is smaller).</param>
    public static MixedRows Build(IReadOnlyDictionary<string, IReadOnlyList<CalibrationDocument>> documents, DocumentRows cutter, int vocab, int rows, int cols, int seed)
    {
        var counts = Apportion(rows);
        var result = new List<int[]>(rows);
        var notes = new List<string>();
        for (int c = 0; c < counts.Count; c++)
        {
            var (name, count) = counts[c];
            var random = new Random(CategorySeed(seed, c));
            if (name == RandomCategory)
            {
                for (int r = 0; r < count; r++)
                    result.Add([.. Enumerable.Range(0, cols).Select(_ => random.Next(vocab))]);
                continue;
            }
            var order = documents[name].ToArray();
            random.Shuffle(order);
            result.AddRange(cutter.Cut(order, count, cols));
            if (cutter.Passes > 1)
                notes.Add($"{name}: {count} rows of {cols} tokens needed its documents {cutter.Passes} times over");
        }
        return new MixedRows(result, counts, notes);
    }

    /// <summary>Each category its own stream of the seed, so changing one category's share does not reshuffle the others.</summary>
    private static int CategorySeed(int seed, int category) => unchecked((seed * 1_000_003) + category);
}
