using System.Text.Json;
using Converter.Eval.Codebooks.Screening;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Tests.Codebooks;

public sealed class ScreenJournalTests
{
    private static readonly ScreenSettings Settings = new(CodebookKind.Mul1, [2, 4], Tiles: 64, Seed: 9);
    private string _dir = null!;

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("trellis-journal-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private static ScreenResult Result(uint multiplier, double mse) =>
        new($"0x{multiplier:X8}", 1.2, -0.001, [new ScreenBitsResult(2, mse, mse - 0.001, mse + 0.001, 0.0625, 0.07, mse - 0.07, -0.0005, 0.0005, false),
            new ScreenBitsResult(4, mse / 16, 0, 1, 0.0039, 0.0045, 0, 0, 0, false)], "cpu x2", 1.5);

    [Test]
    public void ResultsSurviveReopeningAndAreSkippedThen()
    {
        var path = Path.Combine(_dir, "sub", "screen.jsonl");
        var journal = ScreenJournal.Open(path, Settings);
        Assert.That(journal.Results, Is.Empty);
        journal.Append(Result(0x11, 0.071));
        journal.Append(Result(0x13, 0.069));

        var reopened = ScreenJournal.Open(path, Settings);
        Assert.That(reopened.Results, Has.Count.EqualTo(2));
        Assert.That(reopened.Done, Is.EquivalentTo(new uint[] { 0x11, 0x13 }));
        Assert.That(reopened.Results[1].At(2).Mse, Is.EqualTo(0.069));
        Assert.That(reopened.Results[1].At(4).ReferenceMse, Is.EqualTo(0.0045));
        var lines = File.ReadAllLines(path);
        Assert.That(lines, Has.Length.EqualTo(3));
        using var header = JsonDocument.Parse(lines[0]);
        Assert.That(header.RootElement.GetProperty("screen").GetProperty("reference").GetString(), Is.EqualTo("0x83DCD12D"));
    }

    [Test]
    public void ATornLastLineIsDroppedAndCut()
    {
        var path = Path.Combine(_dir, "screen.jsonl");
        ScreenJournal.Open(path, Settings).Append(Result(0x11, 0.071));
        var full = File.ReadAllText(path);
        var line = JsonSerializer.Serialize(Result(0x13, 0.069), ScreenJournal.LineOptions);
        File.WriteAllText(path, full + line[..(line.Length / 2)]);

        var journal = ScreenJournal.Open(path, Settings);
        Assert.That(journal.Done, Is.EquivalentTo(new uint[] { 0x11 }));
        Assert.That(File.ReadAllText(path), Is.EqualTo(full), "the torn line is cut so the next append starts a clean line");
        journal.Append(Result(0x13, 0.069));
        Assert.That(ScreenJournal.Open(path, Settings).Done, Is.EquivalentTo(new uint[] { 0x11, 0x13 }));
    }

    [Test]
    public void AJournalOfOtherSettingsIsRefusedNamingItsFile()
    {
        var path = Path.Combine(_dir, "screen.jsonl");
        ScreenJournal.Open(path, Settings);
        foreach (var other in new[] { Settings with { Tiles = 65 }, Settings with { Seed = 1 }, Settings with { Bits = [2] }, Settings with { Kind = CodebookKind.Mcg } })
        {
            var e = Assert.Throws<InvalidDataException>(() => ScreenJournal.Open(path, other))!;
            Assert.That(e.Message, Does.StartWith(path + ": a screen journal of other settings"));
        }
    }

    [Test]
    public void ADamagedLineOrHeaderIsRefusedNamingTheLine()
    {
        var path = Path.Combine(_dir, "screen.jsonl");
        ScreenJournal.Open(path, Settings).Append(Result(0x11, 0.071));
        File.AppendAllText(path, "{not json\n");
        Assert.That(Assert.Throws<InvalidDataException>(() => ScreenJournal.Open(path, Settings))!.Message, Does.StartWith(path + ":3: not a screen result"));
        File.WriteAllText(path, "{\"multiplier\":\"0x11\"}\n");
        Assert.That(Assert.Throws<InvalidDataException>(() => ScreenJournal.Open(path, Settings))!.Message, Does.StartWith(path + ":1: not a screen journal"));
    }
}
