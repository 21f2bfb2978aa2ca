using System.IO.Compression;
using System.Text.Json.Nodes;
using Converter.Conversion.Calibration;
using Converter.Formats.Tokenizers;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// The built-in calibration mix on the sample's tokenizer: deterministic for a seed, categories in their stated
/// shares and laid out in order, each category's rows made of its own kind of text, random rows in range, and the
/// embedded data the same as samples/calibration with a manifest that credits every source.
/// </summary>
public class CalibrationMixTests
{
    private static readonly Lazy<Tokenizer> SampleTokenizer = new(() => Tokenizer.FromFile(Path.Combine(RepoPaths.SampleModel, "tokenizer.json")));
    private static readonly Lazy<IReadOnlyDictionary<string, IReadOnlyList<CalibrationDocument>>> Documents = new(BuiltInCalibrationSet.Load);

    private static MixedRows Build(int rows, int cols, int seed, ChatTemplate? template = null) =>
        CalibrationMix.Build(Documents.Value, new DocumentRows(SampleTokenizer.Value, template ?? ChatTemplate.Plain), SampleTokenizer.Value.VocabSize, rows, cols, seed);

    [Test]
    public void SharesAreApportionedByLargestRemainder()
    {
        Assert.That(CalibrationMix.Categories.Sum(c => c.Percent), Is.EqualTo(100));
        // 250 rows: floors 87, 37, 25, 30, 32, 37; the 2 left go to the ties at .5 in category order (prose, code).
        // 128 rows: floors 44, 19, 12, 15, 16, 19 (125), the 3 left go to the largest remainders .8 (prose), .8 (technical), .64 (dialogue).
        Assert.That(CalibrationMix.Apportion(128), Is.EqualTo(new[] { ("prose", 45), ("code", 19), ("technical", 13), ("multilingual", 15), ("dialogue", 17), ("random", 19) }));
        Assert.That(CalibrationMix.Apportion(250), Is.EqualTo(new[] { ("prose", 88), ("code", 38), ("technical", 25), ("multilingual", 30), ("dialogue", 32), ("random", 37) }));
        for (int rows = 0; rows <= 600; rows++)
        {
            var counts = CalibrationMix.Apportion(rows);
            Assert.That(counts.Sum(c => c.Rows), Is.EqualTo(rows), $"{rows} rows");
            for (int i = 0; i < counts.Count; i++)
                Assert.That(Math.Abs(counts[i].Rows - (rows * CalibrationMix.Categories[i].Percent / 100.0)), Is.LessThan(1), $"{rows} rows, {counts[i].Category}");
        }
    }

    [Test]
    public void TheSameSeedGivesTheSameRowsAndAnotherSeedOthers()
    {
        var a = Build(40, 64, seed: 3);
        var b = Build(40, 64, seed: 3);
        var c = Build(40, 64, seed: 4);
        Assert.That(a.Rows, Has.Count.EqualTo(40));
        Assert.That(a.Rows.Select(r => r.Length), Is.All.EqualTo(64));
        Assert.That(b.Rows, Is.EqualTo(a.Rows));
        Assert.That(a.Counts, Is.EqualTo(CalibrationMix.Apportion(40)));
        int differing = a.Rows.Zip(c.Rows).Count(p => !p.First.SequenceEqual(p.Second));
        Assert.That(differing, Is.GreaterThan(30), "another seed shuffles every category's documents and the random rows");
    }

    [Test]
    public void EachCategorysRowsHoldItsKindOfText()
    {
        var tokenizer = SampleTokenizer.Value;
        var mix = Build(100, 128, seed: 0);
        int start = 0;
        var rowsOf = new Dictionary<string, List<int[]>>();
        foreach (var (category, count) in mix.Counts)
        {
            rowsOf[category] = mix.Rows.Skip(start).Take(count).ToList();
            start += count;
        }
        int bos = tokenizer.BosTokenId!.Value;
        foreach (var category in rowsOf.Keys.Where(c => c != CalibrationMix.RandomCategory))
            Assert.That(rowsOf[category].Select(r => r[0]), Is.All.EqualTo(bos), $"{category} rows start with BOS, as the model's inputs do");
        string Text(string category) => string.Join("\n", rowsOf[category].Select(r => tokenizer.Decode(r.AsSpan(1))));

        var prose = File.ReadAllText(Path.Combine(RepoPaths.Samples, "data", "calibration.txt"));
        Assert.That(rowsOf["prose"].Select(r => tokenizer.Decode(r.AsSpan(1, 40)).Trim()), Is.All.Matches<string>(s => prose.Contains(s.Split('\n')[0], StringComparison.Ordinal)),
            "prose rows are calibration.txt");
        Assert.That(Text("code"), Does.Contain(";").And.Contain("{"));
        // Latin-script languages are mostly ASCII; a tenth of non-ASCII characters is far beyond English (the prose has almost none).
        Assert.That(Text("multilingual").Count(ch => ch > 0x7F), Is.GreaterThan(Text("multilingual").Length / 10), "text in other languages");
        Assert.That(Text("prose").Count(ch => ch > 0x7F), Is.LessThan(Text("prose").Length / 100));
        Assert.That(Text("dialogue"), Does.Contain("User: ").And.Contain("Assistant: "), "rendered as plain text when no template is recognized");
        Assert.That(Text("technical"), Does.Match("[A-Z][A-Za-z]+\\(.*\\): "), "member signatures of the API documentation");

        var random = rowsOf[CalibrationMix.RandomCategory].SelectMany(r => r).ToList();
        Assert.That(random, Is.All.InRange(0, tokenizer.VocabSize - 1));
        Assert.That(random.Distinct().Count(), Is.GreaterThan(random.Count / 2), "uniform over the vocabulary, not a constant");
    }

    [Test]
    public void DialogueRowsUseTheChatTemplate()
    {
        var chatml = ChatTemplate.Detect("<|im_start|>", null);
        var mix = Build(100, 128, seed: 0, chatml);
        int start = mix.Counts.TakeWhile(c => c.Category != "dialogue").Sum(c => c.Rows);
        var text = string.Join("\n", mix.Rows.Skip(start).Take(mix.Counts.Single(c => c.Category == "dialogue").Rows).Select(r => SampleTokenizer.Value.Decode(r)));
        Assert.That(text, Does.Contain("<|im_start|>assistant\n").And.Contain("<|im_end|>"));
        Assert.That(text, Does.Not.Contain("Assistant: "));
    }

    [Test]
    public void RandomIdsStayBelowTheSmallerVocabulary()
    {
        var mix = CalibrationMix.Build(Documents.Value, new DocumentRows(SampleTokenizer.Value, ChatTemplate.Plain), vocab: 100, rows: 20, cols: 64, seed: 0);
        int start = mix.Counts.TakeWhile(c => c.Category != CalibrationMix.RandomCategory).Sum(c => c.Rows);
        Assert.That(mix.Rows.Skip(start).SelectMany(r => r), Is.All.InRange(0, 99));
    }

    [Test]
    public void DocumentsContinueAcrossRowsAndAreReusedWhenShort()
    {
        var tokenizer = SampleTokenizer.Value;
        var cutter = new DocumentRows(tokenizer, ChatTemplate.Plain);
        Assert.That(cutter.Lead, Is.EqualTo(new[] { tokenizer.BosTokenId!.Value }));
        CalibrationDocument[] documents = [CalibrationDocument.FromText("The first document is here."), CalibrationDocument.FromText("A second one follows it.")];
        var stream = documents.SelectMany(d => tokenizer.Encode(cutter.TextOf(d), addSpecialTokens: false)).ToArray();
        var rows = cutter.Cut(documents, rows: 6, cols: 9);
        Assert.That(rows.Select(r => r[0]), Is.All.EqualTo(tokenizer.BosTokenId!.Value));
        var body = rows.SelectMany(r => r.Skip(1)).ToArray();
        var expected = Enumerable.Repeat(stream, 1 + (body.Length / stream.Length)).SelectMany(s => s).Take(body.Length).ToArray();
        Assert.That(body, Is.EqualTo(expected), "the documents' tokens in order, continuing across rows, then again from the start");
        Assert.That(cutter.Passes, Is.GreaterThan(1));
    }

    [Test]
    public void TheEmbeddedDataIsSamplesCalibrationAndItsManifestCreditsEverySource()
    {
        var manifest = JsonNode.Parse(BuiltInCalibrationSet.Manifest())!;
        Assert.That(BuiltInCalibrationSet.Manifest(), Is.EqualTo(File.ReadAllText(Path.Combine(RepoPaths.Samples, "calibration", "manifest.json"))));
        Assert.That((manifest["name"]!.GetValue<string>(), manifest["version"]!.GetValue<int>()), Is.EqualTo((BuiltInCalibrationSet.Name, BuiltInCalibrationSet.Version)));
        var categories = manifest["categories"]!.AsObject();
        Assert.That(categories.Select(c => c.Key), Is.EquivalentTo(CalibrationMix.Categories.Select(c => c.Name).Where(n => n != CalibrationMix.RandomCategory)));
        foreach (var name in BuiltInCalibrationSet.StoredCategories)
        {
            var entry = categories[name]!;
            var path = Path.Combine(RepoPaths.Samples, "calibration", entry["file"]!.GetValue<string>());
            Assert.That(entry["compressed_bytes"]!.GetValue<long>(), Is.EqualTo(new FileInfo(path).Length), name);
            using var lines = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
            Assert.That(Documents.Value[name], Has.Count.EqualTo(entry["documents"]!.GetValue<int>()).And.Count.EqualTo(CalibrationJsonl.Read(lines, path).Count), name);
            foreach (var source in entry["sources"]!.AsArray())
                Assert.That(source!["license"]!.GetValue<string>(), Is.Not.Empty, $"{name}: {source["name"]}");
        }
        long compressed = BuiltInCalibrationSet.StoredCategories.Sum(n => categories[n]!["compressed_bytes"]!.GetValue<long>());
        Assert.That(compressed, Is.LessThan(3L << 20), "the embedded data stays small");
    }

    [Test]
    public void TheRecordStatesTheMixAndTheTemplate()
    {
        var record = CalibrationRows.Record(CalibrationSource.BuiltIn, RepoPaths.SampleModel, new CalibrationVolumeChoice(128, 512, "model"), seed: 5);
        var json = record.ToJson();
        Assert.That(json.ToJsonString(), Is.EqualTo(
            "{\"rows\":128,\"cols\":512,\"dataset\":\"built-in trellis-cal v1\",\"volume\":\"model\",\"seed\":5," +
            "\"categories\":{\"prose\":45,\"code\":19,\"technical\":13,\"multilingual\":15,\"dialogue\":17,\"random\":19},\"chat_template\":\"plain\"}"));
        Assert.That(record.Describe(), Is.EqualTo("128 rows × 512 tokens of built-in trellis-cal v1 (rows: prose 45, code 19, technical 13, multilingual 15, dialogue 17, random 19; dialogue as plain), seed 5"));

        var plain = CalibrationRows.Record(CalibrationSource.FromFile("x.txt"), RepoPaths.SampleModel, new CalibrationVolumeChoice(8, 64, "given"), seed: 0);
        Assert.That(plain.ToJson().ToJsonString(), Is.EqualTo("{\"rows\":8,\"cols\":64,\"dataset\":\"x.txt\",\"volume\":\"given\",\"seed\":0,\"categories\":{\"file\":8},\"chat_template\":null}"));
        Assert.That(plain.Source(), Is.EqualTo("x.txt"), "a plain text's model card line reads as before");
    }
}
