using Converter.Conversion.Pipeline;
using Converter.Formats.Tokenizers;

namespace Converter.Conversion.Calibration;

/// <summary>The token rows of a conversion's calibration and the record of what they are.</summary>
public sealed record CalibrationBuild(IReadOnlyList<int[]> Rows, CalibrationRecord Record, IReadOnlyList<string> Notes);

/// <summary>
/// Builds the calibration rows from a <see cref="CalibrationSource"/> for a model: the built-in mix
/// (<see cref="CalibrationMix"/>), a plain text's windows (<see cref="CalibrationSet"/>), or a JSONL file's documents in a
/// seeded shuffle cut into rows (<see cref="DocumentRows"/>). The same source, model, volume and seed give the same rows.
/// </summary>
public static class CalibrationRows
{
    public const string UserCategory = "file";

    public static CalibrationBuild Build(CalibrationSource source, string modelDir, Tokenizer tokenizer, int modelVocab, CalibrationVolumeChoice volume, int seed)
    {
        var (rows, notes) = source switch
        {
            CalibrationSource.PlainText plain =>
                (CalibrationSet.Build(tokenizer, plain.Text.ReadAll("calibration text"), plain.Text.Name, volume.Rows, volume.Cols, seed), []),
            CalibrationSource.JsonlFile file => FromJsonl(file.Path, modelDir, tokenizer, volume, seed),
            _ => FromMix(modelDir, tokenizer, modelVocab, volume, seed),
        };
        return new CalibrationBuild(rows, Record(source, modelDir, volume, seed), notes);
    }

    private static (IReadOnlyList<int[]>, IReadOnlyList<string>) FromJsonl(string path, string modelDir, Tokenizer tokenizer, CalibrationVolumeChoice volume, int seed)
    {
        var documents = CalibrationJsonl.ReadFile(path).ToArray();
        new Random(seed).Shuffle(documents);
        var cutter = new DocumentRows(tokenizer, ChatTemplate.ForModel(modelDir));
        var rows = cutter.Cut(documents, volume.Rows, volume.Cols);
        return (rows, cutter.Passes > 1 ? [$"{path}: {volume.Rows} rows of {volume.Cols} tokens needed its documents {cutter.Passes} times over"] : []);
    }

    private static (IReadOnlyList<int[]>, IReadOnlyList<string>) FromMix(string modelDir, Tokenizer tokenizer, int modelVocab, CalibrationVolumeChoice volume, int seed)
    {
        var cutter = new DocumentRows(tokenizer, ChatTemplate.ForModel(modelDir));
        var mix = CalibrationMix.Build(BuiltInCalibrationSet.Load(), cutter, Math.Min(tokenizer.VocabSize, modelVocab), volume.Rows, volume.Cols, seed);
        return (mix.Rows, mix.Notes);
    }

    /// <summary>The record of a calibration, from the settings and the model folder alone (a resumed job builds no rows).</summary>
    public static CalibrationRecord Record(CalibrationSource source, string modelDir, CalibrationVolumeChoice volume, int seed) => source switch
    {
        CalibrationSource.PlainText => new CalibrationRecord(source.Name, volume.Rows, volume.Cols, volume.Rule, seed, [(UserCategory, volume.Rows)], null),
        CalibrationSource.JsonlFile file => new CalibrationRecord(source.Name, volume.Rows, volume.Cols, volume.Rule, seed, [(UserCategory, volume.Rows)],
            CalibrationJsonl.ReadFile(file.Path).Any(d => d.Messages is not null) ? ChatTemplate.ForModel(modelDir).Shape : null),
        _ => new CalibrationRecord(source.Name, volume.Rows, volume.Cols, volume.Rule, seed, CalibrationMix.Apportion(volume.Rows),
            CalibrationMix.Apportion(volume.Rows).Any(c => c.Category == "dialogue" && c.Rows > 0) ? ChatTemplate.ForModel(modelDir).Shape : null),
    };
}
