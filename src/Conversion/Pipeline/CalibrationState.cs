using System.Runtime.InteropServices;
using Converter.Compute;
using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Modules;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The calibration rows as they flow through the model: token ids, the current hidden states of every row
/// (none before the embedding), and the rows dropped because their states became non-finite (§5.2 step 5).
/// Rows run through a module in small chunks so activation memory stays bounded whatever the row count. The states
/// live on the host, one array per row (<see cref="HiddenStates"/>: all of them together pass 2^31 values), or,
/// given a backend that can hold them, on its device (<see cref="ResidentStates"/>), where a decoder block runs on
/// them without a round trip through host memory.
/// </summary>
public sealed class CalibrationState : IDisposable
{
    /// <summary>Tokens per forward chunk: large enough for efficient GEMMs, small enough for MLP activations.</summary>
    private const int ChunkTokens = 4096;

    /// <summary>Rows of <paramref name="tokens"/> tokens that run through a module at once.</summary>
    public static int ChunkRows(int tokens) => Math.Max(1, ChunkTokens / tokens);

    /// <summary>exllamav3 aborts when more than 10% of the rows went bad.</summary>
    public const double MaxBadFraction = 0.10;

    private readonly IResidentForwardBackend? _device;

    /// <param name="hidden">Host states to start from, or null before the embedding (<see cref="Load"/> resumes a job's onto either place).</param>
    /// <param name="device">The backend whose device holds the states the embedding makes, or null to hold them on the host.</param>
    public CalibrationState(IReadOnlyList<int[]> rows, HiddenStates? hidden, IEnumerable<int> badRows, IResidentForwardBackend? device = null)
    {
        Rows = rows;
        Hidden = hidden;
        BadRows = new SortedSet<int>(badRows);
        _device = device;
    }

    public IReadOnlyList<int[]> Rows { get; }
    public int Tokens => Rows[0].Length;

    /// <summary>The states when they are held on the host (null before the embedding, or when they are on a device).</summary>
    public HiddenStates? Hidden { get; private set; }

    /// <summary>The states when a backend's device holds them.</summary>
    public ResidentStates? Resident { get; private set; }

    /// <summary>Where the states are: "host", or the device (e.g. cuda:0).</summary>
    public string Placement => _device?.Device ?? "host";

    public SortedSet<int> BadRows { get; }

    public IEnumerable<int> GoodRows => Enumerable.Range(0, Rows.Count).Where(r => !BadRows.Contains(r));

    /// <summary>
    /// Runs <paramref name="module"/> over the given rows and returns the outputs (rows·tokens, width) of the first
    /// <paramref name="keepRows"/> of them (all when null), in that order. The rest are run for the observer only: a
    /// capture needs the reference rows' outputs, not a fresh 1 GB matrix of all of them (0.8 s of page faults and
    /// copies per llama-3-8b layer).
    /// </summary>
    /// <param name="stash">A decoder block's stage stash for these rows (<see cref="HoldStash"/>), or null.</param>
    public Matrix Forward(ModelModule module, IReadOnlyList<int> rows, ILinearInputObserver? observer, int? keepRows = null, StashRun? stash = null)
    {
        int kept = Math.Min(rows.Count, keepRows ?? rows.Count);
        var output = new KeptRows(kept, Tokens);
        ForEachChunk(module, rows, observer, writeBack: false, kept, stash,
            (start, result) => output.Take(start, result, Math.Min(result.Rows / Tokens, kept - start)), null);
        return output.Result;
    }

    /// <summary>
    /// Runs <paramref name="module"/> over the given rows and hands each chunk's outputs ((rows·tokens, width), the
    /// chunk's first row at index start of <paramref name="rows"/>) to <paramref name="take"/> as they come, so a
    /// caller that only reduces them never holds them all: the head's 5 reference rows of logits are 5.3 GB at 2048
    /// tokens and a 128k vocabulary. The outputs are valid during the call only: from a device they come into a
    /// matrix the state keeps for the next chunk and the next module (one per chunk size), not a fresh one each time.
    /// </summary>
    public void ForwardChunks(ModelModule module, IReadOnlyList<int> rows, Action<int, Matrix> take, StashRun? stash = null) =>
        ForEachChunk(module, rows, null, writeBack: false, rows.Count, stash, take, null, KeptBuffer);

    /// <summary>Host matrices that device outputs of a number of rows are written into by <see cref="ForwardChunks"/>, by that number.</summary>
    private readonly Dictionary<int, Matrix> _keptBuffers = [];

    private Matrix? KeptBuffer(int rows)
    {
        if (rows == 0 || (Resident ?? Hidden) is not { } held)
            return null;
        if (!_keptBuffers.TryGetValue(rows, out var buffer) || buffer.Cols != held.Width)
            _keptBuffers[rows] = buffer = Matrix.Uninitialized(rows * Tokens, held.Width);
        return buffer;
    }

    /// <summary>
    /// Runs <paramref name="module"/> over the good rows and makes its outputs the hidden states, dropping rows that
    /// became non-finite (§5.2 step 5); returns the rows dropped now. Each chunk's outputs replace its own rows'
    /// states in place, which is safe because a chunk's inputs are gathered into a copy before it runs (on the host, or
    /// on the device by the resident run), and no chunk reads another's rows; so a step neither allocates (and first
    /// touches) new states nor holds two sets of them (2 × 8.4 GB at 250 × 2048 tokens of a 4096-wide model).
    /// </summary>
    public IReadOnlyList<int> Advance(ModelModule module, StashRun? stash = null) => Advance(module, GoodRows.ToList(), null, stash);

    /// <summary>
    /// <see cref="Advance(ModelModule)"/> for the given rows only, with <paramref name="observer"/> shown each group's
    /// input: the original model's stream of the drift target advances a chunk at a time, each chunk's inputs paired
    /// with the quantized stream's same rows (<see cref="Models.DriftCapture"/>).
    /// </summary>
    public IReadOnlyList<int> Advance(ModelModule module, IReadOnlyList<int> rows, ILinearInputObserver? observer, StashRun? stash = null)
    {
        var dropped = new List<int>();
        if (module is EmbeddingModule embedding && stash is null)
            Embed(embedding, rows, dropped);
        else
            ForEachChunk(module, rows, observer, writeBack: true, 0, stash, (_, _) => { }, dropped);
        BadRows.UnionWith(dropped);
        if (BadRows.Count > MaxBadFraction * Rows.Count)
        {
            throw new InvalidDataException(
                $"{BadRows.Count} of {Rows.Count} calibration rows have non-finite hidden states (more than {MaxBadFraction:P0}); the model overflows on this text");
        }
        return dropped;
    }

    /// <summary>
    /// The embedding's states, written a row at a time where they are held: into host rows in place, onto a device
    /// through one row's buffer per worker, rows in parallel. Run as a module (<see cref="ForEachChunk"/>), each chunk
    /// first gathered the rows' earlier states as its input, which the embedding ignores (from a GPU, a download of all
    /// of them), and its output was copied twice: 13.0 s of an 8B at 250 × 2048 on an H100 (session 29), where
    /// exllamav3's converter takes 2.6 s.
    /// </summary>
    private void Embed(EmbeddingModule embedding, IReadOnlyList<int> rows, List<int> dropped)
    {
        HoldStates(embedding.HiddenSize);
        var bad = new System.Collections.Concurrent.ConcurrentBag<int>();
        void Check(int r, ReadOnlySpan<float> row)
        {
            if (embedding.Scales && !FiniteCheck.AllFinite(row))
                bad.Add(r);
        }
        try
        {
            if (Hidden is { } host)
            {
                Parallel.ForEach(rows, r =>
                {
                    embedding.Lookup(Rows[r], host.Row(r), r);
                    Check(r, host.Row(r));
                });
            }
            else
            {
                // Buffers of about two chunks' tokens in all, the memory a chunk's input and output took before.
                var states = States;
                int values = Tokens * embedding.HiddenSize;
                var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Clamp(2 * ChunkTokens / Tokens, 1, Environment.ProcessorCount) };
                Parallel.ForEach(rows, options, () => GC.AllocateUninitializedArray<float>(values), (r, _, buffer) =>
                {
                    embedding.Lookup(Rows[r], buffer, r);
                    Check(r, buffer);
                    states.WriteRow(r, buffer);
                    return buffer;
                }, _ => { });
            }
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        dropped.AddRange(bad.Order());
    }

    /// <summary>
    /// Runs the rows through the module in chunks of about <see cref="ChunkTokens"/> tokens; hands each chunk's
    /// outputs (at least its first <paramref name="keepRows"/> − start rows', and its first row's index in
    /// <paramref name="rows"/>) to <paramref name="take"/>; with <paramref name="writeBack"/>, the outputs become the
    /// rows' states and the rows whose outputs are not finite are added to <paramref name="dropped"/>.
    /// </summary>
    /// <param name="keptInto">For a number of kept rows, a matrix to write them into (<see cref="ResidentRun.KeptInto"/>), or null.</param>
    private void ForEachChunk(ModelModule module, IReadOnlyList<int> rows, ILinearInputObserver? observer, bool writeBack, int keepRows, StashRun? stash,
        Action<int, Matrix> take, List<int>? dropped, Func<int, Matrix?>? keptInto = null)
    {
        int chunk = ChunkRows(Tokens);
        var block = stash is null ? null : module as DecoderBlock ?? throw new ArgumentException($"{module.Name} is no decoder block: it keeps no stash", nameof(module));
        for (int start = 0; start < rows.Count; start += chunk)
        {
            var ids = rows.Skip(start).Take(chunk).ToList();
            int keep = Math.Clamp(keepRows - start, 0, ids.Count);
            var run = new ResidentRun(writeBack, keep, stash?.For(ids), keptInto?.Invoke(keep));
            // States on a GPU, or on the host where the module's backend runs them from there (CudaForwardBackend.Run).
            if ((Resident ?? (ResidentStates?)Hidden) is { } resident && module.TryForward(resident, ids, observer, run) is { } output)
            {
                take(start, output.Kept);
                dropped?.AddRange(output.NonFinite.Select(i => ids[i]));
                continue;
            }
            var batch = SequenceBatch.FromTokens(ids.Select(r => Rows[r]).ToList());
            if (Hidden is not null || Resident is not null)
                batch = batch.WithValues(Gather(ids));
            if (!writeBack && keepRows - start <= 0 && observer is not null)
            {
                // Nothing of this chunk's output is wanted: the module may stop early (DecoderBlock.Capture).
                if (block is not null)
                    block.Capture(batch, observer, stash!.For(ids));
                else
                    module.Capture(batch, observer);
                HeapReuse.ReleaseFinishedStep();
                continue;
            }
            var result = (block is not null ? block.Forward(batch, observer, stash!.For(ids)) : module.Forward(batch, observer)).RequireValues(module.Name);
            if (writeBack)
            {
                HoldStates(result.Cols);
                for (int i = 0; i < ids.Count; i++)
                {
                    var src = result.RowRange(i * Tokens, Tokens);
                    WriteRow(ids[i], src);
                    if (!FiniteCheck.AllFinite(src))
                        dropped?.Add(ids[i]);
                }
            }
            take(start, result);
            // The chunk's input and activations are garbage now; the next chunk reuses their memory.
            HeapReuse.ReleaseFinishedStep();
        }
    }

    /// <summary>
    /// Shows <paramref name="observer"/> the given rows' states as the input of <paramref name="group"/> (the head's
    /// capture): from the device where they are held there; host states through <paramref name="through"/>'s pass when
    /// a GPU runs the forwards, so that their sums take the device's arithmetic as a decoder block's capture of host
    /// states does (the host route's cross sums gave the head other bits: placement must not change the model); else
    /// as a host copy.
    /// </summary>
    public void Observe(LinearGroup group, ILinearInputObserver observer, IReadOnlyList<int> rows, IForwardBackend? through = null)
    {
        if (through is null && !HeldByDevice)
        {
            observer.OnLinearInput(group, Gather(rows));
            return;
        }
        // Nothing of the pass is wanted back but the observer's sums.
        Run(rows, through ?? HostForwardPass.Instance, (pass, x) => pass.Observe(observer, group, x));
    }

    /// <summary>
    /// Runs <paramref name="body"/> on the given rows' states (stacked in that order) where they are held: on their
    /// device by its resident run, else uploaded to <paramref name="through"/>'s pass; nothing comes back but what the
    /// body takes itself (the head's comparison after quantizing takes its sums from the pass).
    /// </summary>
    public void Run(IReadOnlyList<int> rows, IForwardBackend through, Action<IForwardPass, Activations> body)
    {
        Func<IForwardPass, Activations, Activations> run = (pass, x) =>
        {
            body(pass, x);
            return pass.Zeros(1, 1);
        };
        if (HeldByDevice)
            _device!.Run(Resident!, rows, new ResidentRun(WriteBack: false, KeepRows: 0), run);
        else
            through.Run(Gather(rows), run);
    }

    /// <summary>Whether the states are on the device of this state's resident backend.</summary>
    private bool HeldByDevice => Resident is { } resident && _device is { } device && device.Holds(resident);

    /// <summary>The states wherever they are held (a pass loads rows of them: <see cref="IForwardPass.Load"/>).</summary>
    public ResidentStates States =>
        Resident ?? (ResidentStates?)Hidden ?? throw new InvalidOperationException("no hidden states before the embedding has run");

    /// <summary>
    /// An empty stage stash for a decoder block's sequential capture of these rows (<see cref="StageStash"/>), held
    /// where the states are: on their device, or on the host.
    /// </summary>
    public StageStash HoldStash() =>
        new(Rows.Count, width => _device is not null && Resident is not null ? _device.HoldStates(Rows.Count, Tokens, width) : new HiddenStates(Rows.Count, Tokens, width));

    /// <summary>Makes sure the states hold rows of <paramref name="width"/> (the embedding's output makes the first ones).</summary>
    private void HoldStates(int width)
    {
        int? held = Hidden?.Width ?? Resident?.Width;
        if (held == width)
            return;
        // Outputs are written over their own inputs, so a module that changed the width would overwrite states its
        // later chunks still read; only the embedding makes states, from none.
        if (held is not null)
            throw new InvalidOperationException($"a module that turns states of width {held} into {width} cannot advance them in place");
        if (_device is not null)
            Resident = _device.HoldStates(Rows.Count, Tokens, width);
        else
            Hidden = new HiddenStates(Rows.Count, Tokens, width);
    }

    /// <summary>The hidden states of the given rows, stacked in that order (rows·tokens, width).</summary>
    public Matrix Gather(IReadOnlyList<int> rows) => States.Gather(rows);

    /// <summary>Row <paramref name="row"/>'s states, copied into <paramref name="destination"/> from wherever they are.</summary>
    public void ReadRow(int row, Span<float> destination) => States.ReadRow(row, destination);

    /// <summary>Replaces row <paramref name="row"/>'s states with <paramref name="source"/>, wherever they are.</summary>
    private void WriteRow(int row, ReadOnlySpan<float> source) => States.WriteRow(row, source);

    /// <summary>The state file's tensors: token ids (rows, tokens) and the hidden states (rows·tokens, width), laid out as before the states were held per row, so older checkpoints still resume.</summary>
    private const string IdsTensor = "input_ids", HiddenTensor = "hidden";

    /// <summary>
    /// Saves tokens, hidden states and bad rows (the checkpoint's state file). The states are streamed a row at a time
    /// into one tensor (from their host arrays, or copied down from the device), so the file needs no second copy of
    /// them in memory.
    /// </summary>
    public void Save(string path)
    {
        var writer = new SafetensorsWriter();
        var ids = Rows.SelectMany(r => r).ToArray();
        writer.Add(IdsTensor, DType.I32, [Rows.Count, Tokens], ids);
        if (Hidden is { } h)
            writer.Add(PendingTensor.FromFloat32(HiddenTensor, [(long)h.Rows * h.Tokens, h.Width], h.Parts));
        else if (Resident is { } resident)
            writer.Add(PendingTensor.FromProducer(HiddenTensor, DType.F32, [(long)resident.Rows * resident.Tokens, resident.Width], stream => WriteRows(resident, stream)));
        writer.Metadata["bad_rows"] = string.Join(',', BadRows);
        writer.Write(path);
    }

    /// <summary>
    /// Streams the rows of device states into the file through one row's buffer. The disk sets the pace, not the
    /// copy: on the H200 machine 7.8 GiB took 7.4–8.9 s from the device and 9.1 s from host memory in the same session,
    /// and overlapping each row's copy with the write of the one before (tried) still took 8.7–10 s.
    /// </summary>
    private static void WriteRows(ResidentStates states, Stream stream)
    {
        var row = new float[(long)states.Tokens * states.Width];
        for (int r = 0; r < states.Rows; r++)
        {
            states.ReadRow(r, row);
            stream.Write(MemoryMarshal.AsBytes(row.AsSpan()));
        }
    }

    /// <summary>
    /// Loads a state file, the hidden states a row at a time straight from the file's map into their row arrays, or
    /// through one row's buffer onto <paramref name="device"/>'s.
    /// </summary>
    public static CalibrationState Load(string path, IResidentForwardBackend? device = null)
    {
        using var file = SafetensorsFile.Open(path);
        var shape = file.Info(IdsTensor).Shape;
        var ids = file.ReadRaw<int>(IdsTensor);
        int rows = (int)shape[0], tokens = (int)shape[1];
        var rowList = Enumerable.Range(0, rows).Select(r => ids.AsSpan(r * tokens, tokens).ToArray()).ToList();
        var bad = file.Metadata.TryGetValue("bad_rows", out var b) && b.Length > 0 ? b.Split(',').Select(int.Parse) : [];
        var state = new CalibrationState(rowList, null, bad, device);
        if (!file.Contains(HiddenTensor))
            return state;
        var hs = file.Info(HiddenTensor).Shape;
        if (hs.Length != 2 || hs[0] != (long)rows * tokens || hs[1] is < 1 or > int.MaxValue)
            throw new SafetensorsFormatException(path, HiddenTensor, $"shape {file.Info(HiddenTensor).ShapeText} does not hold {rows}·{tokens} token states");
        int width = (int)hs[1];
        state.HoldStates(width);
        // Host rows are read straight from the file's map into their arrays; device rows through one row's buffer.
        var buffer = state.Hidden is null ? new float[(long)tokens * width] : null;
        for (int r = 0; r < rows; r++)
        {
            var row = state.Hidden is { } hidden ? hidden.Row(r) : buffer;
            file.ReadFloat32(HiddenTensor, (long)r * tokens * width, row);
            if (state.Resident is not null)
                state.WriteRow(r, row);
        }
        return state;
    }

    /// <summary>Frees device-held states.</summary>
    public void Dispose()
    {
        Resident?.Dispose();
        Resident = null;
    }
}
