using Converter.Compute;
using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Modules;

namespace Converter.Cli.Pipeline;

/// <summary>
/// The calibration rows as they flow through the model: token ids, the current hidden states of every row
/// (null before the embedding), and the rows dropped because their states became non-finite (§5.2 step 5).
/// Rows run through a module in small chunks so activation memory stays bounded whatever the row count.
/// </summary>
public sealed class CalibrationState
{
    /// <summary>Tokens per forward chunk: large enough for efficient GEMMs, small enough for MLP activations.</summary>
    private const int ChunkTokens = 4096;

    /// <summary>exllamav3 aborts when more than 10% of the rows went bad.</summary>
    public const double MaxBadFraction = 0.10;

    public CalibrationState(IReadOnlyList<int[]> rows, Matrix? hidden, IEnumerable<int> badRows)
    {
        Rows = rows;
        Hidden = hidden;
        BadRows = new SortedSet<int>(badRows);
    }

    public IReadOnlyList<int[]> Rows { get; }
    public int Tokens => Rows[0].Length;
    public Matrix? Hidden { get; private set; }
    public SortedSet<int> BadRows { get; }

    public IEnumerable<int> GoodRows => Enumerable.Range(0, Rows.Count).Where(r => !BadRows.Contains(r));

    /// <summary>Runs <paramref name="module"/> over the given rows and returns their outputs (rows·tokens, width) in that order.</summary>
    public Matrix Forward(ModelModule module, IReadOnlyList<int> rows, ILinearInputObserver? observer)
    {
        int chunk = Math.Max(1, ChunkTokens / Tokens);
        Matrix? output = null;
        for (int start = 0; start < rows.Count; start += chunk)
        {
            var ids = rows.Skip(start).Take(chunk).ToList();
            var batch = SequenceBatch.FromTokens(ids.Select(r => Rows[r]).ToList());
            if (Hidden is not null)
                batch = batch.WithValues(Gather(ids));
            var result = module.Forward(batch, observer).RequireValues(module.Name);
            output ??= new Matrix(rows.Count * Tokens, result.Cols);
            result.Data.CopyTo(output.RowRange(start * Tokens, ids.Count * Tokens));
            // The chunk's input and activations are garbage now; the next chunk reuses their memory.
            HeapReuse.ReleaseFinishedStep();
        }
        return output!;
    }

    /// <summary>The hidden states of the given rows, stacked in that order (rows·tokens, width).</summary>
    public Matrix Gather(IReadOnlyList<int> rows)
    {
        var h = Hidden ?? throw new InvalidOperationException("no hidden states before the embedding has run");
        var m = new Matrix(rows.Count * Tokens, h.Cols);
        for (int i = 0; i < rows.Count; i++)
            h.RowRange(rows[i] * Tokens, Tokens).CopyTo(m.RowRange(i * Tokens, Tokens));
        return m;
    }

    /// <summary>
    /// Replaces the hidden states of the good rows by <paramref name="output"/> (stacked in <see cref="GoodRows"/>
    /// order) and drops rows that became non-finite. Returns the rows dropped now.
    /// </summary>
    public IReadOnlyList<int> Advance(Matrix output)
    {
        var good = GoodRows.ToList();
        var next = Hidden is { } h && h.Cols == output.Cols ? h : new Matrix(Rows.Count * Tokens, output.Cols);
        var dropped = new List<int>();
        for (int i = 0; i < good.Count; i++)
        {
            var src = output.RowRange(i * Tokens, Tokens);
            src.CopyTo(next.RowRange(good[i] * Tokens, Tokens));
            if (!FiniteCheck.AllFinite(src))
                dropped.Add(good[i]);
        }
        Hidden = next;
        BadRows.UnionWith(dropped);
        if (BadRows.Count > MaxBadFraction * Rows.Count)
        {
            throw new InvalidDataException(
                $"{BadRows.Count} of {Rows.Count} calibration rows have non-finite hidden states (more than {MaxBadFraction:P0}); the model overflows on this text");
        }
        return dropped;
    }

    /// <summary>Saves tokens, hidden states and bad rows (the checkpoint's state file).</summary>
    public void Save(string path)
    {
        var writer = new SafetensorsWriter();
        var ids = Rows.SelectMany(r => r).ToArray();
        writer.Add("input_ids", DType.I32, [Rows.Count, Tokens], ids);
        if (Hidden is { } h)
            writer.AddFloat32("hidden", [h.Rows, h.Cols], h.Data);
        writer.Metadata["bad_rows"] = string.Join(',', BadRows);
        writer.Write(path);
    }

    public static CalibrationState Load(string path)
    {
        using var file = SafetensorsFile.Open(path);
        var shape = file.Info("input_ids").Shape;
        var ids = file.ReadRaw<int>("input_ids");
        int rows = (int)shape[0], tokens = (int)shape[1];
        var rowList = Enumerable.Range(0, rows).Select(r => ids.AsSpan(r * tokens, tokens).ToArray()).ToList();
        Matrix? hidden = null;
        if (file.Contains("hidden"))
        {
            var hs = file.Info("hidden").Shape;
            hidden = new Matrix((int)hs[0], (int)hs[1], file.ReadFloat32("hidden"));
        }
        var bad = file.Metadata.TryGetValue("bad_rows", out var b) && b.Length > 0 ? b.Split(',').Select(int.Parse) : [];
        return new CalibrationState(rowList, hidden, bad);
    }
}
