using Converter.Eval.Codebooks.Screening;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Tests.Codebooks;

public sealed class MultiplierListTests
{
    private string _dir = null!;

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("trellis-multipliers-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private string Write(string text)
    {
        var path = Path.Combine(_dir, "list.txt");
        File.WriteAllText(path, text);
        return path;
    }

    [Test]
    public void ReadsHexDecimalCommentsAndBlankLinesKeepingFirstOfDuplicates()
    {
        var path = Write("# candidates\n0xFF7A83E5   # seed discussion\n\n  0xcaf6a435\n3803663173\n0xFF7A83E5\n   # only a comment\n");
        Assert.That(MultiplierList.Read(path, CodebookKind.Mcg), Is.EqualTo(new uint[] { 0xFF7A83E5, 0xCAF6A435, 3803663173 }));
    }

    [TestCase("0xFF7A83E5\n0x12G4\n", 2, "malformed multiplier '0x12G4'")]
    [TestCase("1\n2\n3\n", 2, "even")]
    [TestCase("# c\n\n0x1FFFFFFFF\n", 3, "malformed multiplier")]
    [TestCase("-5\n", 1, "malformed multiplier")]
    public void ABadLineNamesTheFileAndLine(string text, int line, string message)
    {
        var path = Write(text);
        var e = Assert.Throws<InvalidDataException>(() => MultiplierList.Read(path, CodebookKind.Mcg))!;
        Assert.That(e.Message, Does.StartWith($"{path}:{line}: "));
        Assert.That(e.Message, Does.Contain(message));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void EvenMultipliersAreFineForMul1ButNotMcg()
    {
        var path = Write("0x83DCD12C\n");
        Assert.That(MultiplierList.Read(path, CodebookKind.Mul1), Is.EqualTo(new uint[] { 0x83DCD12C }));
        Assert.Throws<InvalidDataException>(() => MultiplierList.Read(path, CodebookKind.Mcg));
    }

    [Test]
    public void AFileWithoutMultipliersIsRefused()
    {
        var path = Write("# nothing here\n\n");
        var e = Assert.Throws<InvalidDataException>(() => MultiplierList.Read(path, CodebookKind.Mcg))!;
        Assert.That(e.Message, Does.StartWith(path + ": no multiplier"));
    }

    [Test]
    public void RandomMultipliersAreOddDistinctAndSeeded()
    {
        var a = MultiplierList.Random(500, seed: 3);
        Assert.That(a, Has.Count.EqualTo(500));
        Assert.That(a.All(m => (m & 1) == 1), Is.True);
        Assert.That(a.Distinct().Count(), Is.EqualTo(500));
        Assert.That(MultiplierList.Random(500, seed: 3), Is.EqualTo(a));
        Assert.That(MultiplierList.Random(10, seed: 4), Is.Not.EqualTo(a.Take(10)));
        // Spread over the whole 32-bit range, not one corner of it.
        Assert.That(a.Count(m => m >= 0x80000000u), Is.InRange(200, 300));
    }
}
