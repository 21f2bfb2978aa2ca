using Converter.Eval.Evaluation;
using Converter.TestSupport;

namespace Converter.Eval.Tests.Evaluation;

/// <summary>The two shapes of a token ids file and the range check (the CLI tests cover the malformed files).</summary>
public class TokenIdsFileTests
{
    [TestCase("[3, 1, 4]", true, 1)]
    [TestCase("[[3, 1, 4]]", false, 1)]
    [TestCase("[[3, 1, 4], [1, 5, 9]]", false, 2)]
    [TestCase("\uFEFF\n  [ 3,\n 1, 4 ]\n", true, 1)]
    public void FlatArrayIsOneRowAndNestedArraysAreRows(string content, bool flat, int rows)
    {
        using var dir = new TempDirectory();
        var path = dir.File("ids.json");
        File.WriteAllText(path, content, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        var ids = TokenIdsFile.Read(path);
        Assert.That((ids.Flat, ids.Rows.Count, ids.Length, ids.Path), Is.EqualTo((flat, rows, 3, path)));
        Assert.That(ids.Rows[0], Is.EqualTo(new[] { 3, 1, 4 }));
    }

    [Test]
    public void RangeIsCheckedAgainstTheGivenVocabulary()
    {
        var ids = new TokenIdsFile("ids.json", [[0, 1], [2, 9]], Flat: false);
        Assert.That(() => ids.RequireBelow(10, "v"), Throws.Nothing);
        Assert.That(() => ids.RequireBelow(9, "the model's vocab_size 9"), Throws.InstanceOf<InvalidDataException>().With.Message
            .EqualTo("ids.json: row 1, position 1: id 9 is outside the vocabulary 0..8 (the model's vocab_size 9)"));
    }
}
