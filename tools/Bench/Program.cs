using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Converter.Bench;
using Converter.Trellis.Codebooks;

var tilesOption = new Option<int>("--tiles") { Description = "Tiles per SIMD measurement", DefaultValueFactory = _ => 64 };
var referenceTilesOption = new Option<int>("--reference-tiles") { Description = "Tiles for the (slow) scalar reference", DefaultValueFactory = _ => 8 };
var bitsOption = new Option<string>("--bits") { Description = "Comma-separated K values", DefaultValueFactory = _ => "1,2,3,4,5,6,7,8" };
var codebookOption = new Option<string>("--codebook") { Description = "Codebook spec (name or name:0xMULT)", DefaultValueFactory = _ => "mul1" };
var jsonOption = new Option<string?>("--json") { Description = "Also write the results as JSON to this file" };

var encoder = new Command("encoder", "CPU Viterbi encoder throughput (tiles/s) per K: scalar reference, SIMD on one thread and on all threads");
foreach (var o in new Option[] { tilesOption, referenceTilesOption, bitsOption, codebookOption, jsonOption })
    encoder.Options.Add(o);
encoder.SetAction(parse =>
{
    var spec = CodebookSpec.Parse(parse.GetValue(codebookOption)!);
    var bits = parse.GetValue(bitsOption)!.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();
    string cpu = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "" : "";
    string machine = $"{cpu} {RuntimeInformation.OSArchitecture}, {Environment.ProcessorCount} threads, {RuntimeInformation.OSDescription}, .NET {Environment.Version}";
    Console.WriteLine($"encoder benchmark: {spec}, {machine}, {DateTime.UtcNow:yyyy-MM-dd}");
    Console.WriteLine($"{"encoder",-20} {"K",2} {"threads",7} {"tiles",6} {"seconds",8} {"tiles/s",9} {"ns/cand·thread",14}");
    var timings = EncoderBenchmark.Run(spec, bits, parse.GetValue(tilesOption), parse.GetValue(referenceTilesOption), t =>
        Console.WriteLine($"{t.Encoder,-20} {t.Bits,2} {t.Threads,7} {t.Tiles,6} {t.Seconds,8:F3} {t.TilesPerSecond,9:F1} {t.NanosecondsPerCandidate,14:F3}"));
    if (parse.GetValue(jsonOption) is { } path)
    {
        File.WriteAllText(path, JsonSerializer.Serialize(new { machine, date = DateTime.UtcNow, codebook = spec.ToString(), timings },
            new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        Console.WriteLine($"wrote {path}");
    }
    return 0;
});

var root = new RootCommand("trellis-bench: benchmarks of the converter's hot paths (not tests; see docs/benchmarks.md)");
root.Subcommands.Add(encoder);
return root.Parse(args).Invoke();
