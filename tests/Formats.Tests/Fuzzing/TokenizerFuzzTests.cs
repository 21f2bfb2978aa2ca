using System.Text;
using System.Text.Json.Nodes;
using Converter.Formats.Tokenizers;
using Converter.TestSupport;
using Converter.TestSupport.Fuzzing;

namespace Converter.Formats.Tests.Fuzzing;

/// <summary>
/// Issue 15 part 4: seeded mutations of tokenizer.json (the sample's, and cut-down copies whose small vocabularies
/// leave the mutations to the parts that are not vocabulary: model options, added tokens, normalizers,
/// pre-tokenizers, post-processor, decoders) and of tokenizer_config.json must each load and tokenize a text, or fail with a one-line
/// <see cref="TokenizerFormatException"/> naming the file.
/// </summary>
public class TokenizerFuzzTests
{
    private const int Seed = 15_44;
    private const int CaseCount = 500;
    private const string Text = "Hello, wörld! 12345 <|bos|> tabs\tand  spaces 🙂 the end.";

    [Test]
    public void MutatedTokenizersLoadOrFailWithTheOneLineError()
    {
        var sample = File.ReadAllText(Path.Combine(RepoPaths.SampleModel, "tokenizer.json"));
        var sampleConfig = File.ReadAllText(Path.Combine(RepoPaths.SampleModel, "tokenizer_config.json"));
        var mistral = RepoPaths.TestModel("rand-mistral");
        (string Label, string Json, string Config)[] bases =
        [
            ("small tiny-llama", CutDown(sample), sampleConfig),
            ("small rand-mistral", CutDown(File.ReadAllText(Path.Combine(mistral, "tokenizer.json"))), File.ReadAllText(Path.Combine(mistral, "tokenizer_config.json"))),
            ("every component", EveryComponent(CutDown(sample)), sampleConfig),
        ];
        using var dir = new TempDirectory("trellis-fuzz-tokenizer-");
        var path = dir.File("tokenizer.json");
        var configPath = dir.File("tokenizer_config.json");
        var run = new FuzzRun("tokenizer.json", TimeSpan.FromSeconds(10), 256L << 20);
        for (int i = 0; i < CaseCount; i++)
        {
            var random = new Random(Seed * 100_003 + i);
            // Mostly the small files (where mutations reach every component), sometimes the full sample or the config beside it.
            int pick = random.Next(10);
            var (label, baseJson, baseConfig) = pick == 0 ? ("sample tokenizer.json", sample, sampleConfig) : bases[pick % bases.Length];
            var (json, what) = JsonMutator.Mutate(Encoding.UTF8.GetBytes(baseJson), random);
            var config = Encoding.UTF8.GetBytes(baseConfig);
            var target = path;
            if (pick == 1)
            {
                (config, what) = JsonMutator.Mutate(Encoding.UTF8.GetBytes(sampleConfig), random);
                json = Encoding.UTF8.GetBytes(bases[0].Json);
                (label, target) = ("tokenizer_config.json", configPath);
            }
            File.WriteAllBytes(path, json);
            File.WriteAllBytes(configPath, config);
            run.Case($"case {i} ({label}): {what}", () => LoadAndTokenize(path, dir.Path), e => FuzzRun.UserError(e, target, typeof(TokenizerFormatException)));
        }
        run.AssertClean(minAccepted: CaseCount / 10, minRejected: CaseCount / 10);
    }

    private static void LoadAndTokenize(string path, string directory)
    {
        var before = Directory.GetFileSystemEntries(directory);
        var tokenizer = Tokenizer.FromFile(path);
        var ids = tokenizer.Encode(Text);
        if (ids.Any(id => id < 0 || id >= tokenizer.VocabSize))
            throw new InvalidOperationException($"an id of [{string.Join(", ", ids)}] is outside the vocabulary of {tokenizer.VocabSize}");
        _ = tokenizer.Decode(ids);
        if (!Directory.GetFileSystemEntries(directory).SequenceEqual(before))
            throw new InvalidOperationException("loading wrote to the directory");
    }

    /// <summary>A tokenizer using each kind of normalizer, pre-tokenizer and decoder we read, so that mutations reach their readers.</summary>
    private static string EveryComponent(string small)
    {
        var root = JsonNode.Parse(small)!.AsObject();
        root["normalizer"] = JsonNode.Parse("""
            {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Strip", "strip_left": true, "strip_right": false},
              {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}, {"type": "Prepend", "prepend": " "}, {"type": "Lowercase"}]}
            """);
        root["pre_tokenizer"] = JsonNode.Parse("""
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
              {"type": "Digits", "individual_digits": true}, {"type": "Punctuation", "behavior": "Contiguous"},
              {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}
            """);
        root["decoder"] = JsonNode.Parse("""
            {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteLevel"},
              {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
            """);
        return root.ToJsonString();
    }

    /// <summary>A tokenizer with its vocabulary cut to the tokens of at most two characters (and the special ones) and the merges among them.</summary>
    private static string CutDown(string tokenizer)
    {
        var root = JsonNode.Parse(tokenizer)!.AsObject();
        var model = root["model"]!.AsObject();
        var vocab = new JsonObject();
        foreach (var (token, id) in model["vocab"]!.AsObject())
        {
            // Short tokens, and the special ones ("<unk>", "<0x0A>") that options and byte fallback name.
            if (token.Length <= 2 || token.StartsWith('<'))
                vocab[token] = id!.DeepClone();
        }
        var merges = new JsonArray();
        foreach (var merge in model["merges"]!.AsArray())
        {
            var pair = merge is JsonArray a ? (a[0]!.GetValue<string>(), a[1]!.GetValue<string>()) : SplitMerge(merge!.GetValue<string>());
            if (vocab.ContainsKey(pair.Item1) && vocab.ContainsKey(pair.Item2) && vocab.ContainsKey(pair.Item1 + pair.Item2))
                merges.Add(merge!.DeepClone());
        }
        model["vocab"] = vocab;
        model["merges"] = merges;
        return root.ToJsonString();

        static (string, string) SplitMerge(string line) => (line[..line.IndexOf(' ')], line[(line.IndexOf(' ') + 1)..]);
    }
}
