using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Codebooks.Screening;

/// <summary>
/// The screen's results as JSON lines, appended one candidate at a time so a long screen can stop at any moment and
/// resume: the first line is the settings header (<c>{"screen":{…}}</c>), every other line one <see cref="ScreenResult"/>.
/// Opening an existing journal checks its header against this run's settings (a journal made on other tiles cannot be
/// merged with this run's) and drops a torn last line left by a kill mid-write.
/// </summary>
public sealed class ScreenJournal
{
    /// <summary>Bumped when a line's meaning changes, so an old journal is refused rather than misread.</summary>
    public const int FormatVersion = 1;

    internal static readonly JsonSerializerOptions LineOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        // Explicit, because the trimmed single-file build (tools/publish-gpu.sh) turns reflection off by default.
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    private readonly string _path;
    private readonly List<ScreenResult> _results;

    private ScreenJournal(string path, List<ScreenResult> results)
    {
        _path = path;
        _results = results;
    }

    /// <summary>Every result in the journal, earlier runs' first.</summary>
    public IReadOnlyList<ScreenResult> Results => _results;

    /// <summary>The multipliers already measured, for skipping on resume.</summary>
    public IReadOnlySet<uint> Done => _results.Select(r => CodebookSpec.ParseMultiplier(r.Multiplier)).ToHashSet();

    /// <summary>Opens (or creates, with its header) the journal at <paramref name="path"/> for <paramref name="settings"/>.</summary>
    public static ScreenJournal Open(string path, ScreenSettings settings)
    {
        var results = new List<ScreenResult>();
        if (!File.Exists(path) || new FileInfo(path).Length == 0)
        {
            if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir)
                Directory.CreateDirectory(dir);
            File.WriteAllText(path, JsonSerializer.Serialize(new HeaderLine(Header.From(settings)), LineOptions) + "\n");
            return new ScreenJournal(path, results);
        }

        var text = File.ReadAllText(path);
        // Every complete line ends with the newline written with it; text after the last newline is a line torn by a
        // kill mid-write, dropped (and cut from the file so the next append starts a clean line).
        int complete = text.LastIndexOf('\n') + 1;
        var lines = text[..complete].Split('\n');
        var header = ParseHeader(path, lines[0]);
        if (!header.Matches(settings))
            throw new InvalidDataException($"{path}: a screen journal of other settings ({header.Describe()}) than this run's ({settings.Describe()}); " +
                "pass another --out or the same settings");
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
                continue;
            ScreenResult? result;
            try
            {
                result = JsonSerializer.Deserialize<ScreenResult>(lines[i], LineOptions);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{i + 1}: not a screen result ({e.Message})");
            }
            if (result?.PerBits is null || result.Multiplier is null)
                throw new InvalidDataException($"{path}:{i + 1}: not a screen result");
            results.Add(result);
        }
        if (complete < text.Length)
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
            file.SetLength(Encoding.UTF8.GetByteCount(text.AsSpan(0, complete)));
        }
        return new ScreenJournal(path, results);
    }

    /// <summary>Appends one result as a line and flushes it to disk before returning.</summary>
    public void Append(ScreenResult result)
    {
        var line = JsonSerializer.Serialize(result, LineOptions) + "\n";
        using (var file = new FileStream(_path, FileMode.Append, FileAccess.Write))
        {
            var bytes = Encoding.UTF8.GetBytes(line);
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        _results.Add(result);
    }

    private static Header ParseHeader(string path, string line)
    {
        try
        {
            if (JsonSerializer.Deserialize<HeaderLine>(line, LineOptions)?.Screen is { } header)
            {
                if (header.Format != FormatVersion)
                    throw new InvalidDataException($"{path}:1: screen journal format {header.Format}, this trellis reads {FormatVersion}");
                return header;
            }
        }
        catch (JsonException)
        {
        }
        throw new InvalidDataException($"{path}:1: not a screen journal (the first line must be its {{\"screen\":{{…}}}} settings header)");
    }

    private sealed record HeaderLine(Header? Screen);

    /// <summary>The settings as the journal's first line records them.</summary>
    private sealed record Header(int Format, string Codebook, string Reference, int[] Bits, int Tiles, int Seed)
    {
        public static Header From(ScreenSettings s) => new(FormatVersion, s.Codebook, s.Reference.MultiplierHex, s.Bits.ToArray(), s.Tiles, s.Seed);

        public bool Matches(ScreenSettings s) =>
            Codebook == s.Codebook && Reference == s.Reference.MultiplierHex && Bits.SequenceEqual(s.Bits) && Tiles == s.Tiles && Seed == s.Seed;

        public string Describe() => $"{Codebook} against {Reference}, K {string.Join(',', Bits)}, {Tiles} tiles, seed {Seed}";
    }
}
