using System.CommandLine;
using Converter.Cli.Samples;
using Converter.Conversion.Reporting;
using Converter.Conversion.Samples;
using Converter.Models.Synthetic;

namespace Converter.Cli.Commands.Synth;

/// <summary>`trellis synth`: a random-weight Hugging Face checkpoint in the shape of a named real model.</summary>
public sealed class SynthCommand
{
    private readonly Option<string> _shape = new("--shape", "-s") { Description = "Model shape: " + SyntheticShape.PresetNames, DefaultValueFactory = _ => "llama-3-8b" };
    private readonly Option<string?> _out = new("--out", "-o") { Description = "Output directory. Default: out/synth-<shape>" };
    private readonly Option<int?> _layers = new("--layers") { Description = "Override the number of decoder layers (e.g. 1 to time one layer)" };
    private readonly Option<int> _seed = new("--seed") { DefaultValueFactory = _ => 0, Description = "Seed of the random weights" };
    private readonly Option<int> _outliers = new("--outliers") { DefaultValueFactory = _ => 4, Description = "Input channels per linear with 8× larger weights" };
    private readonly Option<int> _shardSize = new("--shard-size") { DefaultValueFactory = _ => 4096, Description = "Maximum shard size in MiB" };
    private readonly Option<string?> _tokenizer = new("--tokenizer-from") { Description = "Copy tokenizer.json and tokenizer_config.json from this model directory. Default: the sample model's, built in" };
    private readonly Option<bool> _overwrite = new("--overwrite") { Description = "Replace a non-empty output directory" };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("synth", "Write a Hugging Face checkpoint with random bf16 weights (a few outlier channels) in the shape of a named model, " +
            "to measure conversion speed at real sizes without downloading weights.");
        foreach (var o in new Option[] { _shape, _out, _layers, _seed, _outliers, _shardSize, _tokenizer, _overwrite })
            command.Options.Add(o);
        command.SetAction(parse => run(context => Execute(parse, context)));
        return command;
    }

    private int Execute(ParseResult parse, CliContext context)
    {
        var name = parse.GetValue(_shape)!;
        if (!SyntheticShape.Presets.TryGetValue(name, out var shape))
            throw new UsageException($"--shape: unknown shape '{name}' (known: {SyntheticShape.PresetNames})");
        if (parse.GetValue(_layers) is { } layers)
            shape = layers >= 1 ? shape with { Layers = layers } : throw new UsageException("--layers must be at least 1");
        var outDir = parse.GetValue(_out) ?? Path.Combine("out", "synth-" + name);
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
        {
            if (!parse.GetValue(_overwrite))
                throw new IOException($"{outDir}: output directory is not empty (use --overwrite to replace it)");
            Directory.Delete(outDir, recursive: true);
        }
        var tokenizer = parse.GetValue(_tokenizer) is { } tokenizerDir ? TokenizerFilesIn(tokenizerDir) : BuiltInSamples.Tokenizer();
        var result = SyntheticCheckpoint.Write(outDir, shape, parse.GetValue(_seed), parse.GetValue(_outliers), (long)parse.GetValue(_shardSize) << 20, tokenizer);
        context.Output.WriteLine($"Wrote {outDir}: {name} shape, {shape.Layers} layers, {result.Files.Count} file(s), {HumanFormat.Bytes(result.TotalSize)}");
        return ExitCodes.Ok;
    }

    /// <summary>The tokenizer files of a model directory (tokenizer.json must be there; tokenizer_config.json is copied when present).</summary>
    private static Dictionary<string, byte[]> TokenizerFilesIn(string dir)
    {
        if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
            throw new FileNotFoundException($"{Path.Combine(dir, "tokenizer.json")}: --tokenizer-from names a directory without tokenizer.json");
        return BuiltInSamples.TokenizerFiles.Where(f => File.Exists(Path.Combine(dir, f))).ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(dir, f)));
    }
}
