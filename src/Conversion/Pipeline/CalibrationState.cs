using Converter.Compute;
using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Modules;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The calibration rows as they flow through the model: token ids, the current hidden states of every row
/// (null before the embedding), and the rows dropped because their states became non-finite (§5.2 step 5).
/// Rows run through a module in small chunks so activation memory stays bounded whatever the row count; the states
/// are held one array per row (<see cref="HiddenStates"/>), since all of them together pass 2^31 values.
/// </summary>
public sealed class CalibrationState
{
    /// <summary>Tokens per forward chunk: large enough for efficient GEMMs, small enough for MLP activations.</summary>
    private const int ChunkTokens = 4096;

    /// <summary>Rows of <paramref name="tokens"/> tokens that run through a module at once.</summary>
    public static int ChunkRows(int tokens) => Math.Max(1, ChunkTokens / tokens);

    /// <summary>exllamav3 aborts when more than 10% of the rows went bad.</summary>
    public const double MaxBadFraction = 0.10;

    public CalibrationState(IReadOnlyList<int[]> rows, HiddenStates? hidden, IEnumerable<int> badRows)
    {
        Rows = rows;
        Hidden = hidden;
        BadRows = new SortedSet<int>(badRows);
    }

    public IReadOnlyList<int[]> Rows { get; }
    public int Tokens => Rows[0].Length;
    public HiddenStates? Hidden { get; private set; }

    /// <summary>The states before the last step: the next step's outputs are written here (double buffering).</summary>
    private HiddenStates? _spare;
    public SortedSet<int> BadRows { get; }

    public IEnumerable<int> GoodRows => Enumerable.Range(0, Rows.Count).Where(r => !BadRows.Contains(r));

    /// <summary>
    /// Runs <paramref name="module"/> over the given rows and returns the outputs (rows·tokens, width) of the first
    /// <paramref name="keepRows"/> of them (all when null), in that order. The rest are run for the observer only: a
    /// capture needs the reference rows' outputs, not a fresh 1 GB matrix of all of them (0.8 s of page faults and
    /// copies per llama-3-8b layer).
    /// </summary>
    public Matrix Forward(ModelModule module, IReadOnlyList<int> rows, ILinearInputObserver? observer, int? keepRows = null)
    {
        int kept = Math.Min(rows.Count, keepRows ?? rows.Count);
        Matrix? output = null;
        ForEachChunk(module, rows, observer, (start, result) =>
        {
            int count = Math.Min(result.Rows / Tokens, kept - start);
            if (count <= 0)
                return;
            output ??= new Matrix(kept * Tokens, result.Cols);
            result.Data.AsSpan(0, count * Tokens * result.Cols).CopyTo(output.RowRange(start * Tokens, count * Tokens));
        });
        return output ?? new Matrix(0, 0);
    }

    /// <summary>
    /// Runs <paramref name="module"/> over the good rows and makes its outputs the hidden states, dropping rows that
    /// became non-finite (§5.2 step 5); returns the rows dropped now. The outputs go straight into the buffer the
    /// states before the last step occupied, so no step allocates (and first touches) a new 1 GB matrix.
    /// </summary>
    public IReadOnlyList<int> Advance(ModelModule module)
    {
        var good = GoodRows.ToList();
        var dropped = new List<int>();
        HiddenStates? next = null;
        ForEachChunk(module, good, null, (start, result) =>
        {
            next ??= _spare is { } spare && spare.Width == result.Cols && spare.Rows == Rows.Count && spare.Tokens == Tokens ? spare : new HiddenStates(Rows.Count, Tokens, result.Cols);
            for (int i = 0; i < result.Rows / Tokens; i++)
            {
                var src = result.RowRange(i * Tokens, Tokens);
                src.CopyTo(next.Row(good[start + i]));
                if (!FiniteCheck.AllFinite(src))
                    dropped.Add(good[start + i]);
            }
        });
        if (next is not null)
        {
            _spare = Hidden;
            Hidden = next;
        }
        BadRows.UnionWith(dropped);
        if (BadRows.Count > MaxBadFraction * Rows.Count)
        {
            throw new InvalidDataException(
                $"{BadRows.Count} of {Rows.Count} calibration rows have non-finite hidden states (more than {MaxBadFraction:P0}); the model overflows on this text");
        }
        return dropped;
    }

    /// <summary>Runs the rows through the module in chunks of about <see cref="ChunkTokens"/> tokens; hands each chunk's output (and its first row's index in <paramref name="rows"/>) to <paramref name="take"/>.</summary>
    private void ForEachChunk(ModelModule module, IReadOnlyList<int> rows, ILinearInputObserver? observer, Action<int, Matrix> take)
    {
        int chunk = ChunkRows(Tokens);
        for (int start = 0; start < rows.Count; start += chunk)
        {
            var ids = rows.Skip(start).Take(chunk).ToList();
            var batch = SequenceBatch.FromTokens(ids.Select(r => Rows[r]).ToList());
            if (Hidden is not null)
                batch = batch.WithValues(Gather(ids));
            take(start, module.Forward(batch, observer).RequireValues(module.Name));
            // The chunk's input and activations are garbage now; the next chunk reuses their memory.
            HeapReuse.ReleaseFinishedStep();
        }
    }

    /// <summary>The hidden states of the given rows, stacked in that order (rows·tokens, width).</summary>
    public Matrix Gather(IReadOnlyList<int> rows)
    {
        var h = Hidden ?? throw new InvalidOperationException("no hidden states before the embedding has run");
        var m = Matrix.Uninitialized(rows.Count * Tokens, h.Width);
        for (int i = 0; i < rows.Count; i++)
            h.Row(rows[i]).CopyTo(m.RowRange(i * Tokens, Tokens));
        return m;
    }

    /// <summary>The state file's tensors: token ids (rows, tokens) and the hidden states (rows·tokens, width), laid out as before the states were held per row, so older checkpoints still resume.</summary>
    private const string IdsTensor = "input_ids", HiddenTensor = "hidden";

    /// <summary>
    /// Saves tokens, hidden states and bad rows (the checkpoint's state file). The states are streamed from their row
    /// arrays into one tensor, so the file needs no second copy of them in memory.
    /// </summary>
    public void Save(string path)
    {
        var writer = new SafetensorsWriter();
        var ids = Rows.SelectMany(r => r).ToArray();
        writer.Add(IdsTensor, DType.I32, [Rows.Count, Tokens], ids);
        if (Hidden is { } h)
            writer.Add(PendingTensor.FromFloat32(HiddenTensor, [(long)h.Rows * h.Tokens, h.Width], h.Parts));
        writer.Metadata["bad_rows"] = string.Join(',', BadRows);
        writer.Write(path);
    }

    /// <summary>Loads a state file, the hidden states a row at a time straight from the file's map into their row arrays.</summary>
    public static CalibrationState Load(string path)
    {
        using var file = SafetensorsFile.Open(path);
        var shape = file.Info(IdsTensor).Shape;
        var ids = file.ReadRaw<int>(IdsTensor);
        int rows = (int)shape[0], tokens = (int)shape[1];
        var rowList = Enumerable.Range(0, rows).Select(r => ids.AsSpan(r * tokens, tokens).ToArray()).ToList();
        HiddenStates? hidden = null;
        if (file.Contains(HiddenTensor))
        {
            var hs = file.Info(HiddenTensor).Shape;
            if (hs.Length != 2 || hs[0] != (long)rows * tokens || hs[1] is < 1 or > int.MaxValue)
                throw new SafetensorsFormatException(path, HiddenTensor, $"shape {file.Info(HiddenTensor).ShapeText} does not hold {rows}·{tokens} token states");
            hidden = new HiddenStates(rows, tokens, (int)hs[1]);
            for (int r = 0; r < rows; r++)
                file.ReadFloat32(HiddenTensor, (long)r * tokens * hidden.Width, hidden.Row(r));
        }
        var bad = file.Metadata.TryGetValue("bad_rows", out var b) && b.Length > 0 ? b.Split(',').Select(int.Parse) : [];
        return new CalibrationState(rowList, hidden, bad);
    }
}
