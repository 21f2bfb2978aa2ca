using Converter.Formats.Tokenizers;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Formats.Tests.Tokenizers;

/// <summary>
/// The priority-queue merge loop of <see cref="BpeModel"/> against the plain definition of BPE: repeatedly merge
/// the adjacent pair of lowest rank, leftmost first, until no pair has a merge.
/// </summary>
public sealed class BpeMergeTests
{
    /// <summary>The definition, O(n²) per word.</summary>
    private static List<int> ReferenceMerge(BpeModel model, List<int> symbols)
    {
        var s = new List<int>(symbols);
        while (true)
        {
            int best = -1, bestRank = int.MaxValue, bestMerged = 0;
            for (int i = 0; i + 1 < s.Count; i++)
            {
                if (model.TryGetMerge(s[i], s[i + 1], out int rank, out int merged) && rank < bestRank)
                    (best, bestRank, bestMerged) = (i, rank, merged);
            }
            if (best < 0)
                return s;
            s[best] = bestMerged;
            s.RemoveAt(best + 1);
        }
    }

    /// <summary>
    /// Random strings over the model's own alphabet (so that long merge chains form), every length 0–64 and some
    /// long ones, plus slices of the calibration text.
    /// </summary>
    [TestCase("tiny-llama")]
    [TestCase("rand-mistral")]
    public void MatchesReferenceMerge(string modelName)
    {
        var model = TestTokenizers.Load(modelName).Model;
        var alphabet = Enumerable.Range(0, model.MaxId + 1).Select(model.IdToToken)
            .Where(t => t != null && t.Length == 1).Select(t => t![0]).ToArray();
        var rng = new Random(1234);
        var text = File.ReadAllText(Path.Combine(RepoPaths.Samples, "data", "calibration.txt"));
        var words = new List<string>();
        for (int length = 0; length <= 64; length++)
        {
            for (int k = 0; k < 20; k++)
                words.Add(new string(Enumerable.Range(0, length).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray()));
        }
        for (int k = 0; k < 50; k++)
        {
            int start = rng.Next(text.Length - 2000);
            var slice = text.Substring(start, rng.Next(1, 2000));
            words.Add(modelName == "rand-mistral" ? slice.Replace(' ', '▁') : ByteLevelAlphabet.Encode(slice));
        }

        foreach (var word in words)
        {
            var symbols = model.InitialSymbols(word);
            Assert.That(model.Merge(symbols), Is.EqualTo(ReferenceMerge(model, symbols)), TestTokenizers.Display(word));
        }
    }
}
