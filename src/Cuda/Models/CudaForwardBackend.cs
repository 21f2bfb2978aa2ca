using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Native;
using Converter.Models;
using Converter.Models.Forward;

namespace Converter.Cuda.Models;

/// <summary>
/// The forward's operations (<see cref="IForwardPass"/>) with every activation on the GPU: a block's hidden states
/// go up once and its output comes down once; products run on cuBLAS (weights cached on the device by
/// <see cref="CudaDenseAlgebra"/>) in FP32 or TF32 (<see cref="GpuForwardOptions"/>), norms, RoPE, gated activations
/// and residuals in Kernels/forward.cu, attention as two batched GEMMs around a causal softmax or, for long rows, one
/// fused kernel (Kernels/attention.cu), and a mixture of experts' routing, gathers and weighted scatters in
/// forward.cu as well (only the experts' token counts come to the host, to size their products). A Hessian
/// observer's sums are added on the device; other observers get host copies of the group inputs. On the host this
/// was ~15 s per llama-3-8b layer pass of 65,536 tokens for ~1 s of GEMMs (docs/benchmarks.md, "GPU").
/// </summary>
public sealed class CudaForwardBackend : IResidentForwardBackend, IDisposable
{
    private const int Threads = 256;
    private const int MaxBlocks = 4096;

    /// <summary>Expert groups route_topk ranks per token in registers (DeepSeek-V3 has 8).</summary>
    private const int MaxRouterGroups = 64;

    /// <summary>
    /// Rows at least this long take the fused attention under <see cref="GpuAttention.Auto"/>. The batched products
    /// write rows·heads·tokens² scores per chunk and compute the whole square where causality needs half: at a chunk
    /// of 4,096 tokens (CalibrationState) and 32 heads that is 256 MB of scores at 512 tokens, 1 GB at 2,048, each
    /// written four times and read four times (the first product, causal_softmax's three passes, the second product).
    /// Below a few hundred tokens the scores are small and cuBLAS's products are hard to beat, so the old path stays.
    /// Not yet tuned on a GPU: `trellis bench forward` measures both paths.
    /// </summary>
    public const int FusedAttentionTokens = 512;

    /// <summary>The widest value head the fused kernel's register accumulators hold (16 columns per thread).</summary>
    public const int MaxFusedValueWidth = 256;

    /// <summary>The fused kernel's blocks: 64 queries, 256 threads (Kernels/attention.cu).</summary>
    private const int FusedQueries = 64;
    private const int FusedThreads = 256;

    /// <summary>token_diff's block: one row of a comparison per block (Kernels/forward.cu, TOKEN_DIFF_THREADS).</summary>
    private const int TokenDiffThreads = 256;

    private readonly CudaDenseAlgebra _algebra;
    private readonly CudaContext _context;
    private CudaModule? _kernels;
    private CudaModule? _moeKernels;
    private RotaryTable? _rotaryOnDevice;
    private DeviceBuffer<float>? _cos, _sin;
    private DeviceBuffer<ulong>? _pointers;
    private DeviceBuffer<int>? _flag;
    private readonly Dictionary<string, DeviceBuffer<int>> _integers = [];
    private readonly Dictionary<string, DeviceBuffer<double>> _doubles = [];

    public CudaForwardBackend(CudaDenseAlgebra algebra, GpuForwardOptions? options = null)
    {
        _algebra = algebra;
        _context = algebra.Context;
        Options = options ?? GpuForwardOptions.Default;
    }

    /// <summary>The arithmetic of the activation products and the attention path this backend runs.</summary>
    public GpuForwardOptions Options { get; }

    /// <summary>
    /// Static shared memory of one causal_attention block for value heads of <paramref name="valueWidth"/>, mirroring
    /// the kernel's arrays (qs, ks: 16 × 68; ps: 64 × 68; vs: 16 × ⌈dv/16⌉·16 floats); it must stay within the 48 KiB
    /// a kernel gets without opting in to more.
    /// </summary>
    public static int FusedAttentionSharedBytes(int valueWidth) => sizeof(float) * (2 * 16 * 68 + 64 * 68 + 16 * ((valueWidth + 15) / 16 * 16));

    /// <summary>
    /// Whether rows of <paramref name="tokens"/> with value heads of <paramref name="valueWidth"/> take the fused kernel
    /// under <paramref name="attention"/>; an explicit <see cref="GpuAttention.Fused"/> the kernel cannot run is an error.
    /// </summary>
    public static bool TakesFusedAttention(GpuAttention attention, int tokens, int valueWidth) => attention switch
    {
        GpuAttention.Products => false,
        GpuAttention.Fused when valueWidth > MaxFusedValueWidth =>
            throw new NotSupportedException($"the fused attention kernel holds value heads of at most {MaxFusedValueWidth}, this attention's are {valueWidth}"),
        GpuAttention.Fused => true,
        _ => tokens >= FusedAttentionTokens && valueWidth <= MaxFusedValueWidth,
    };

    public Matrix Run(Matrix input, Func<IForwardPass, Activations, Activations> body)
    {
        lock (_algebra.Gate)
        {
            var pass = new Pass(this);
            var x = pass.Allocate(input.Rows, input.Cols);
            x.Buffer.CopyFrom(input.Data);
            var result = Pass.Of(body(pass, x));
            var output = Matrix.Uninitialized(result.Rows, result.Cols);
            result.Buffer.CopyTo(output.Data);
            return output;
        }
    }

    /// <summary>Where this backend computes, for logs (cuda:N).</summary>
    public string Device => _algebra.Device;

    /// <summary>The algebra's gate, held around every use of the device.</summary>
    internal Lock Gate => _algebra.Gate;

    public ResidentStates HoldStates(int rows, int tokens, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        lock (_algebra.Gate)
        {
            var buffer = _context.Allocate<float>(checked((long)rows * tokens * width));
            buffer.Fill(0);
            return new DeviceStates(this, buffer, rows, tokens, width);
        }
    }

    public bool Holds(ResidentStates states) => states is DeviceStates mine && ReferenceEquals(mine.Owner, this);

    public bool Runs(ResidentStates states) => Holds(states) || states is HiddenStates;

    /// <summary>
    /// The rows are gathered by device-to-device copies into the pass's input, so a write-back over the same rows
    /// never overwrites an input still to be read; non-finite outputs are flagged per row by flag_nonfinite, and only
    /// the flags and the kept rows cross to the host. This replaces, per 2-row chunk of an 8B layer at 2048 tokens,
    /// a host gather, a 64 MB upload and download, a copy into the host states and a host finiteness scan.
    /// Host states (<see cref="HiddenStates"/>) are uploaded from their row arrays and written back into them: a
    /// host gather into a fresh matrix first-touched its pages at ~1.6 s per GB (0.8 s of each capture stage of a
    /// 70B layer in 20 GB, session 28's sampling trace).
    /// </summary>
    public ResidentOutput Run(ResidentStates states, IReadOnlyList<int> rows, ResidentRun run, Func<IForwardPass, Activations, Activations> body)
    {
        if (!Runs(states))
            throw new ArgumentException($"these states are not held by this backend ({Device}) or the host", nameof(states));
        long rowValues = (long)states.Tokens * states.Width, bytes = rowValues * sizeof(float);
        var host = states as HiddenStates;
        lock (_algebra.Gate)
        {
            var pass = new Pass(this);
            var x = host is not null ? UploadRows(pass, host, rows) : GatherRows(pass, (DeviceStates)states, rows);
            var result = Pass.Of(body(pass, x));
            var nonFinite = new List<int>();
            if (run.WriteBack)
            {
                if (result.Cols != states.Width || result.Rows != x.Rows)
                    throw new InvalidOperationException($"the output ({result.Rows}, {result.Cols}) cannot replace states of ({x.Rows}, {states.Width})");
                var flags = Integers("resident.flags", rows.Count);
                flags.Fill(0);
                for (int i = 0; i < rows.Count; i++)
                {
                    ulong row = result.Pointer + (ulong)(i * bytes);
                    CudaKernels.FlagNonfinite.Launch(Kernels, Grid(rowValues), Threads, 0, (row, rowValues, flags.Pointer + (ulong)(i * sizeof(int))));
                    if (host is null)
                        _context.CopyWithin(((DeviceStates)states).RowPointer(rows[i]), row, bytes);
                }
                if (host is not null)
                    DownloadRows(result, host, rows);
                var flagged = new int[rows.Count];
                flags.CopyTo(flagged);
                for (int i = 0; i < rows.Count; i++)
                {
                    if (flagged[i] != 0)
                        nonFinite.Add(i);
                }
            }
            int kept = Math.Clamp(run.KeepRows, 0, rows.Count);
            var keptOutputs = kept == 0 ? new Matrix(0, 0)
                : run.KeptInto is { } into && into.Rows == kept * states.Tokens && into.Cols == result.Cols ? into
                : Matrix.Uninitialized(kept * states.Tokens, result.Cols);
            if (kept > 0)
                result.Buffer.CopyTo(keptOutputs.Data);
            return new ResidentOutput(keptOutputs, nonFinite);
        }
    }

    /// <summary>
    /// Host states' rows stacked in order in the pass's next slot, each uploaded from its own array (page-locked
    /// staging overlaps a row's host copy with the transfer of the one before); the caller holds the gate.
    /// </summary>
    private DeviceActivations UploadRows(Pass pass, HiddenStates host, IReadOnlyList<int> rows)
    {
        if (rows.Count == 0)
            throw new ArgumentException("a resident run needs at least one row", nameof(rows));
        long rowValues = (long)host.Tokens * host.Width;
        var x = pass.Allocate(checked(rows.Count * host.Tokens), host.Width);
        for (int i = 0; i < rows.Count; i++)
            x.Buffer.CopyFrom(host.Row(rows[i]), i * rowValues);
        return x;
    }

    /// <summary>
    /// <paramref name="x"/>'s rows (tokens each, in order) written over host states' rows <paramref name="rows"/>, straight
    /// into their arrays through one page-locked pipeline; the caller holds the gate.
    /// </summary>
    private static void DownloadRows(DeviceActivations x, HiddenStates host, IReadOnlyList<int> rows) =>
        x.Buffer.CopyTo(rows.Select(host.RowMemory).ToList(), 0);

    /// <summary>The rows stacked in order in the pass's next slot, by device-to-device copies; the caller holds the gate.</summary>
    private DeviceActivations GatherRows(Pass pass, DeviceStates held, IReadOnlyList<int> rows)
    {
        if (rows.Count == 0)
            throw new ArgumentException("a resident run needs at least one row", nameof(rows));
        long bytes = held.RowValues * sizeof(float);
        var x = pass.Allocate(checked(rows.Count * held.Tokens), held.Width);
        for (int i = 0; i < rows.Count; i++)
            _context.CopyWithin(x.Pointer + (ulong)(i * bytes), held.RowPointer(rows[i]), bytes);
        return x;
    }

    /// <summary>
    /// One forward's operations. Each fresh activation takes the next slot of the algebra's grow-only scratch
    /// buffers, so a block's n-th activation reuses the previous block's n-th buffer and nothing is freed.
    /// </summary>
    private sealed class Pass(CudaForwardBackend owner) : IForwardPass
    {
        private int _slots;
        private int _parameters;
        private int _routings;

        public DeviceActivations Allocate(int rows, int cols) =>
            new(owner.Buffer("slot" + _slots++, (long)rows * cols), rows, cols);

        public Activations Linear(Linear linear, Activations x)
        {
            var input = Of(x);
            int m = input.Rows, n = linear.OutFeatures;
            var y = Allocate(m, n);
            owner._algebra.LinearOnDevice(input.Pointer, owner._algebra.CachedWeight(linear.Weight.Data).Pointer, y.Pointer, m, n, linear.InFeatures, owner.Options.Math);
            if (linear.Bias is { } bias)
                CudaKernels.AddBias.Launch(owner.Kernels, Grid((long)m * n), Threads, 0, (y.Pointer, Upload(bias), n, (long)m * n));
            return y;
        }

        public Activations Norm(Activations x, NormKind kind, ReadOnlyMemory<float> weight, float eps)
        {
            var input = Of(x);
            int width = weight.Length;
            long slices = (long)input.Rows * input.Cols / width;
            var y = Allocate(input.Rows, input.Cols);
            int code = kind switch
            {
                NormKind.Rms => 0,
                NormKind.RmsUnitOffset => 1,
                NormKind.Layer => 2,
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "no GPU kernel for this norm"),
            };
            CudaKernels.NormRows.Launch(owner.Kernels, checked((uint)slices), Threads, 0, (input.Pointer, Upload(weight.Span), eps, y.Pointer, width, code));
            return y;
        }

        public void Rope(Activations x, int tokens, int heads, int headDim, RotaryTable table, RotaryPairing pairing)
        {
            var input = Of(x);
            owner.UploadRotary(table);
            long pairs = (long)input.Rows * heads * table.Half;
            CudaKernels.Rope.Launch(owner.Kernels, Grid(pairs), Threads, 0,
                (input.Pointer, owner._cos!.Pointer, owner._sin!.Pointer, tokens, heads, headDim, table.Half, pairing == RotaryPairing.Interleaved ? 1 : 0, pairs));
        }

        public Activations Attend(Activations q, Activations k, Activations v, int tokens, AttentionShape shape)
        {
            var query = Of(q);
            if (tokens <= 0 || query.Rows % tokens != 0)
                throw new ArgumentException($"{query.Rows} query rows are not whole rows of {tokens} tokens", nameof(tokens));
            var output = Allocate(query.Rows, shape.Heads * shape.ValueWidth);
            int rows = query.Rows / tokens;
            ulong sinks = shape.Sinks.IsEmpty ? 0 : Upload(shape.Sinks.Span);
            if (TakesFusedAttention(owner.Options.Attention, tokens, shape.ValueWidth))
            {
                owner.AttendFused(query.Pointer, Of(k).Pointer, Of(v).Pointer, output.Pointer, sinks, rows, tokens, shape);
                return output;
            }
            var scores = Allocate(rows * shape.Heads * tokens, tokens);
            owner.Attend(query.Pointer, Of(k).Pointer, Of(v).Pointer, output.Pointer, scores.Pointer, sinks, rows, tokens, shape);
            return output;
        }

        public Activations Columns(Activations x, int heads, int offset, int width)
        {
            var source = Of(x);
            if (heads <= 0 || source.Cols % heads != 0 || offset < 0 || width <= 0 || offset + width > source.Cols / heads)
                throw new ArgumentException($"columns [{offset}, {offset + width}) of each of {heads} heads do not fit rows of {source.Cols}", nameof(x));
            var y = Allocate(source.Rows, heads * width);
            CopyHeadColumns(source, source.Cols / heads, offset, y, width, 0, heads, width);
            return y;
        }

        public Activations JoinHeads(Activations a, Activations b, int heads, bool sharedB)
        {
            DeviceActivations first = Of(a), second = Of(b);
            if (heads <= 0 || first.Cols % heads != 0 || (!sharedB && second.Cols % heads != 0) || first.Rows != second.Rows)
                throw new ArgumentException($"cannot join ({first.Rows}, {first.Cols}) and ({second.Rows}, {second.Cols}) over {heads} heads", nameof(b));
            int wa = first.Cols / heads, wb = sharedB ? second.Cols : second.Cols / heads;
            var y = Allocate(first.Rows, heads * (wa + wb));
            CopyHeadColumns(first, wa, 0, y, wa + wb, 0, heads, wa);
            CopyHeadColumns(second, sharedB ? 0 : wb, 0, y, wa + wb, wa, heads, wb);
            return y;
        }

        private void CopyHeadColumns(DeviceActivations source, int sourceStride, int sourceOffset, DeviceActivations target, int targetStride, int targetOffset, int heads, int width)
        {
            long n = (long)source.Rows * heads * width;
            CudaKernels.CopyHeadColumns.Launch(owner.Kernels, Grid(n), Threads, 0,
                (source.Pointer, source.Cols, sourceStride, sourceOffset, target.Pointer, target.Cols, targetStride, targetOffset, heads, width, n));
        }

        public Activations Gate(Activations gate, Activations up, MlpActivation activation)
        {
            var g = Of(gate);
            long n = (long)g.Rows * g.Cols;
            if (activation == MlpActivation.ClampedSwiGlu)
            {
                CudaKernels.ClampedSwiGlu.Launch(owner.Kernels, Grid(n), Threads, 0,
                    (g.Pointer, Of(up).Pointer, GatedActivation.ClampedSwiGluAlpha, GatedActivation.ClampedSwiGluLimit, n));
                return gate;
            }
            var kernel = activation switch
            {
                MlpActivation.Silu => CudaKernels.SwiGlu,
                MlpActivation.GeluTanh => CudaKernels.GeluTanhGate,
                _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "no GPU kernel for this activation"),
            };
            kernel.Launch(owner.Kernels, Grid(n), Threads, 0, (g.Pointer, Of(up).Pointer, n));
            return gate;
        }

        public void Add(Activations target, Activations x)
        {
            var t = Of(target);
            long n = (long)t.Rows * t.Cols;
            CudaKernels.AddInPlace.Launch(owner.Kernels, Grid(n), Threads, 0, (t.Pointer, Of(x).Pointer, n));
        }

        public void Scale(Activations x, float factor)
        {
            var y = Of(x);
            long n = (long)y.Rows * y.Cols;
            CudaKernels.ScaleInPlace.Launch(owner.Kernels, Grid(n), Threads, 0, (y.Pointer, factor, n));
        }

        public void SoftCap(Activations x, float cap)
        {
            if (!(cap > 0))
                throw new ArgumentOutOfRangeException(nameof(cap), cap, "the soft cap must be positive");
            var y = Of(x);
            long n = (long)y.Rows * y.Cols;
            CudaKernels.SoftCap.Launch(owner.Kernels, Grid(n), Threads, 0, (y.Pointer, cap, n));
        }

        public TokenDiff[] Compare(Activations a, Activations b)
        {
            DeviceActivations test = Of(a), reference = Of(b);
            if (test.Rows != reference.Rows || test.Cols != reference.Cols)
                throw new ArgumentException($"compared activations ({test.Rows}, {test.Cols}) and ({reference.Rows}, {reference.Cols}) differ in shape");
            if (test.Rows == 0)
                return [];
            var sums = owner.Doubles("compare.sums", 5L * test.Rows);
            CudaKernels.TokenDiff.Launch(owner.Kernels, (uint)test.Rows, TokenDiffThreads, 0, (test.Pointer, reference.Pointer, test.Cols, sums.Pointer));
            var host = new double[5 * test.Rows];
            sums.CopyTo(host);
            var rows = new TokenDiff[test.Rows];
            for (int r = 0; r < rows.Length; r++)
                rows[r] = new TokenDiff(host[5 * r], host[5 * r + 1], host[5 * r + 2], host[5 * r + 3], host[5 * r + 4]);
            return rows;
        }

        public void Observe(ILinearInputObserver? observer, LinearGroup group, Activations x) => owner.Observe(observer, group, Of(x));

        public Activations Zeros(int rows, int cols)
        {
            var y = Allocate(rows, cols);
            long n = (long)rows * cols;
            CudaKernels.ZeroFill.Launch(owner.MoeKernels, Grid(n), Threads, 0, (y.Pointer, n));
            return y;
        }

        /// <summary>
        /// route_topk picks each token's experts and weights, expert_lists turns them into per-expert token lists;
        /// only the list lengths come to the host (one synchronizing copy of E integers per block), which the
        /// experts' products need for their shapes.
        /// </summary>
        public ExpertAssignment Route(Activations logits, RouterSpec router, ReadOnlyMemory<float> correctionBias, bool everyToken)
        {
            var scores = Of(logits);
            if (scores.Cols != router.Experts)
                throw new ArgumentException($"router logits ({scores.Rows}, {scores.Cols}) do not have one column per expert ({router.Experts})", nameof(logits));
            long tokens = scores.Rows;
            string role = "route" + _routings++;
            var selected = owner.Integers(role + ".selected", tokens * router.TopK);
            var weights = owner.Buffer(role + ".weights", tokens * router.TopK);
            var lists = owner.Integers(role + ".lists", router.Experts * tokens);
            var listWeights = owner.Buffer(role + ".list_weights", router.Experts * tokens);
            var counts = owner.Integers(role + ".counts", router.Experts);
            ulong bias = correctionBias.IsEmpty ? 0 : Upload(correctionBias.Span);
            int scoring = router.Scoring switch
            {
                RouterScoring.Softmax => 0,
                RouterScoring.Sigmoid => 1,
                _ => throw new ArgumentOutOfRangeException(nameof(router), router.Scoring, "no GPU kernel for this router scoring"),
            };
            if (router.GroupLimited && router.Groups > MaxRouterGroups)
                throw new NotSupportedException($"route_topk keeps at most {MaxRouterGroups} expert groups in registers, the router has {router.Groups}");
            CudaKernels.RouteTopK.Launch(owner.MoeKernels, Grid(tokens), Threads, 0,
                (scores.Pointer, router.Experts, router.TopK, scoring, router.NormalizeTopK ? 1 : 0, router.NormEpsilon,
                    router.Scale, bias, router.Groups, router.TopKGroups, selected.Pointer, weights.Pointer, tokens));
            CudaKernels.ExpertLists.Launch(owner.MoeKernels, (uint)router.Experts, Threads, 0,
                (selected.Pointer, weights.Pointer, router.TopK, tokens, everyToken ? 1 : 0, lists.Pointer, listWeights.Pointer, counts.Pointer));
            var lengths = new int[router.Experts];
            counts.CopyTo(lengths);
            return new DeviceAssignment(lists.Pointer, listWeights.Pointer, tokens, lengths);
        }

        public Activations Gather(Activations x, ExpertAssignment assignment, int expert)
        {
            var source = Of(x);
            var a = Of(assignment);
            var y = Allocate(a.Count(expert), source.Cols);
            long n = (long)y.Rows * y.Cols;
            CudaKernels.GatherRows.Launch(owner.MoeKernels, Grid(n), Threads, 0, (source.Pointer, a.List(expert), source.Cols, y.Pointer, n));
            return y;
        }

        public void ScatterAdd(Activations target, Activations y, ExpertAssignment assignment, int expert)
        {
            var rows = Of(y);
            var a = Of(assignment);
            if (rows.Rows != a.Count(expert))
                throw new ArgumentException($"expert {expert} has {a.Count(expert)} tokens, its output {rows.Rows} rows", nameof(y));
            long n = (long)rows.Rows * rows.Cols;
            CudaKernels.ScatterAddRows.Launch(owner.MoeKernels, Grid(n), Threads, 0, (Of(target).Pointer, rows.Pointer, a.List(expert), a.Weights(expert), rows.Cols, n));
        }

        /// <summary>
        /// Rewinds the activation slots when disposed, so the next expert's activations take the same buffers. Safe
        /// without waiting: every kernel and product of the pass runs in order on one stream, so a reused buffer is
        /// written only after the work that read it.
        /// </summary>
        public IDisposable Temporaries() => new SlotMark(this, _slots);

        /// <summary>Device states by device-to-device copies; host states from their rows' arrays; others a row at a time through host memory.</summary>
        public Activations Load(ResidentStates states, IReadOnlyList<int> rows)
        {
            if (owner.Holds(states))
                return owner.GatherRows(this, (DeviceStates)states, rows);
            if (states is HiddenStates host)
                return owner.UploadRows(this, host, rows);
            var x = Allocate(checked(rows.Count * states.Tokens), states.Width);
            var row = new float[checked(states.Tokens * states.Width)];
            for (int i = 0; i < rows.Count; i++)
            {
                states.ReadRow(rows[i], row);
                x.Buffer.CopyFrom(row, (long)i * row.Length);
            }
            return x;
        }

        public void Store(Activations x, ResidentStates states, IReadOnlyList<int> rows)
        {
            var input = Of(x);
            if (input.Cols != states.Width || input.Rows != rows.Count * states.Tokens)
                throw new ArgumentException($"activations ({input.Rows}, {input.Cols}) are not {rows.Count} rows of ({states.Tokens}, {states.Width})", nameof(x));
            long values = (long)states.Tokens * states.Width;
            if (owner.Holds(states))
            {
                var held = (DeviceStates)states;
                for (int i = 0; i < rows.Count; i++)
                    owner._context.CopyWithin(held.RowPointer(rows[i]), input.Pointer + (ulong)(i * values * sizeof(float)), values * sizeof(float));
                return;
            }
            if (states is HiddenStates host)
            {
                DownloadRows(input, host, rows);
                return;
            }
            var row = new float[values];
            for (int i = 0; i < rows.Count; i++)
            {
                input.Buffer.CopyTo(row, i * values);
                states.WriteRow(rows[i], row);
            }
        }

        private sealed class SlotMark(Pass pass, int mark) : IDisposable
        {
            public void Dispose() => pass._slots = mark;
        }

        /// <summary>
        /// Copies a small parameter vector (norm weights, biases) into a buffer of its own: one per upload in the
        /// pass, so no upload overwrites a vector that a kernel queued earlier in the block still reads.
        /// </summary>
        private ulong Upload(ReadOnlySpan<float> values)
        {
            var buffer = owner.Buffer("param" + _parameters++, values.Length);
            buffer.CopyFrom(values);
            return buffer.Pointer;
        }

        public static DeviceActivations Of(Activations x) =>
            x as DeviceActivations ?? throw new ArgumentException("activations of another backend reached the GPU pass", nameof(x));

        private static DeviceAssignment Of(ExpertAssignment x) =>
            x as DeviceAssignment ?? throw new ArgumentException("an expert assignment of another backend reached the GPU pass", nameof(x));
    }

    /// <summary>Per-expert token lists and weights on the device (expert e's at e·tokens), their lengths on the host.</summary>
    private sealed class DeviceAssignment(ulong lists, ulong weights, long tokens, int[] counts) : ExpertAssignment
    {
        public override int Experts => counts.Length;

        public override int Count(int expert) => counts[expert];

        public ulong List(int expert) => lists + (ulong)(expert * tokens) * sizeof(int);

        public ulong Weights(int expert) => weights + (ulong)(expert * tokens) * sizeof(float);
    }

    private sealed class DeviceActivations(DeviceBuffer<float> buffer, int rows, int cols) : Activations
    {
        public DeviceBuffer<float> Buffer { get; } = buffer;

        public ulong Pointer => Buffer.Pointer;

        public override int Rows => rows;

        public override int Cols => cols;
    }

    /// <summary>
    /// Per row r and query head h (kv head g = h / (heads / kvHeads), HF's repeat_kv): S = Q_h·K_gᵀ (tokens ×
    /// tokens), causal softmax of the scaled (and capped) S, O_h = P·V_g written into the head's columns. Value and
    /// output heads are <see cref="AttentionShape.ValueWidth"/> wide (latent attention's differ from the keys').
    /// </summary>
    /// <param name="sinks">The heads' sink logits on the device (gpt-oss), or 0 when the attention has none.</param>
    private void Attend(ulong q, ulong k, ulong v, ulong output, ulong scores, ulong sinks, int rows, int tokens, AttentionShape shape)
    {
        int heads = shape.Heads, kvHeads = shape.KvHeads, d = shape.HeadDim, dv = shape.ValueWidth;
        int queryWidth = heads * d, keyWidth = kvHeads * d, valueWidth = kvHeads * dv, outputWidth = heads * dv, group = heads / kvHeads;
        int batch = rows * heads;
        // Operand pointers of the two batched products: Q_h, K_g, V_g, S and O_h per (row, head).
        var pointers = new ulong[5 * batch];
        for (int r = 0; r < rows; r++)
        {
            ulong token0 = (ulong)r * (ulong)tokens;
            for (int h = 0; h < heads; h++)
            {
                int i = r * heads + h, g = h / group;
                ulong queryOffset = (token0 * (ulong)queryWidth + (ulong)(h * d)) * sizeof(float);
                ulong keyOffset = (token0 * (ulong)keyWidth + (ulong)(g * d)) * sizeof(float);
                pointers[i] = q + queryOffset;
                pointers[batch + i] = k + keyOffset;
                pointers[2 * batch + i] = v + (token0 * (ulong)valueWidth + (ulong)(g * dv)) * sizeof(float);
                pointers[3 * batch + i] = scores + (ulong)i * (ulong)tokens * (ulong)tokens * sizeof(float);
                pointers[4 * batch + i] = output + (token0 * (ulong)outputWidth + (ulong)(h * dv)) * sizeof(float);
            }
        }
        if (_pointers is null || _pointers.Count < pointers.Length)
        {
            _pointers?.Dispose();
            _pointers = _context.Allocate<ulong>(pointers.Length);
        }
        _pointers.CopyFrom(pointers);
        ulong Array(int slot) => _pointers.Pointer + (ulong)(slot * batch) * sizeof(ulong);

        // Row-major S (tokens×tokens) = Q_h·K_gᵀ, mapped onto column-major cuBLAS as in Linear (K_g plays W).
        _algebra.GemmBatched(CudaMathLibraries.OpT, CudaMathLibraries.OpN, tokens, tokens, d, 1f, Array(1), keyWidth, Array(0), queryWidth, Array(3), tokens, batch, Options.Math);
        long scoreRows = (long)batch * tokens;
        int warpsPerBlock = Threads / 32;
        CudaKernels.CausalSoftmax.Launch(Kernels, (uint)((scoreRows + warpsPerBlock - 1) / warpsPerBlock), Threads, 0,
            (scores, tokens, shape.Scale ?? 1f / MathF.Sqrt(d), shape.SoftCap ?? 0f, shape.Window ?? int.MaxValue, scoreRows, sinks, heads));
        // Row-major O_h (tokens×dv, ld outputWidth) = P·V_g is column-major O_hᵀ = V_gᵀ·Pᵀ (as MultiplyAdd maps C = A·B).
        _algebra.GemmBatched(CudaMathLibraries.OpN, CudaMathLibraries.OpN, dv, tokens, tokens, 1f, Array(2), valueWidth, Array(3), tokens, Array(4), outputWidth, batch, Options.Math);
    }

    /// <summary>
    /// The same attention as <see cref="Attend"/> in one kernel (Kernels/attention.cu, compiled per head and value
    /// width): one block per (row, head, 64 queries), the scores never leave the block. FP32 whatever
    /// <see cref="GpuForwardOptions.Math"/> says.
    /// </summary>
    private void AttendFused(ulong q, ulong k, ulong v, ulong output, ulong sinks, int rows, int tokens, AttentionShape shape)
    {
        int d = shape.HeadDim, dv = shape.ValueWidth;
        if (shape.KvHeads <= 0 || shape.Heads % shape.KvHeads != 0)
            throw new ArgumentException($"{shape.Heads} query heads cannot be grouped over {shape.KvHeads} key/value heads", nameof(shape));
        long blocks = (long)rows * shape.Heads * ((tokens + FusedQueries - 1) / FusedQueries);
        if (blocks > int.MaxValue)
            throw new NotSupportedException($"{blocks} attention blocks exceed the grid's limit");
        var module = _context.Module(CudaKernels.AttentionSource, new Dictionary<string, string>
        {
            ["ATTENTION_HEAD_DIM"] = d.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ATTENTION_VALUE_DIM"] = dv.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        CudaKernels.CausalAttention.Launch(module, (uint)blocks, FusedThreads, 0,
            (q, k, v, output, tokens, shape.Heads, shape.KvHeads, shape.Scale ?? 1f / MathF.Sqrt(d), shape.SoftCap ?? 0f, shape.Window ?? int.MaxValue, sinks));
    }

    /// <summary>
    /// Feeds a group's input to the observer where its rows are all finite: a device copy for the original stream's side
    /// of the drift target, the Hessian and cross sums on the device for its quantized side when the original's rows are
    /// held here, the Hessian sum on the device for a Hessian observer; else (a row with NaN/Inf, dropped and counted
    /// by the host accumulators, or a general observer) a host copy.
    /// </summary>
    private void Observe(ILinearInputObserver? observer, LinearGroup group, DeviceActivations input)
    {
        if (observer is null || !observer.Observes(group))
            return;
        int m = input.Rows;
        long count = (long)m * group.InFeatures;
        if (observer is IOriginalInputHolder holder && AllFinite(input.Pointer, count))
        {
            holder.Hold(group, _algebra.KeepRows(input.Pointer, m, group.InFeatures));
            return;
        }
        if (observer is IDriftObserver drift)
        {
            if (AllFinite(input.Pointer, count) && drift.TakeResidentOriginal(group) is { } original)
            {
                using (original)
                {
                    AddGram(drift, group, input.Pointer, m);
                    var sum = drift.CrossFor(group);
                    if (!sum.AddOnDevice(m, cross => _algebra.TryAddCrossOnDevice(cross, input.Pointer, original, m, sum.Projection, Options.Math)))
                        throw new InvalidOperationException($"{group}: the drift target's cross sum or the original stream's rows are not on {_algebra.Device}");
                }
                return;
            }
        }
        else if (observer is IHessianObserver hessians && AllFinite(input.Pointer, count))
        {
            AddGram(hessians, group, input.Pointer, m);
            return;
        }
        var host = Matrix.Uninitialized(m, group.InFeatures);
        input.Buffer.CopyTo(host.Data);
        observer.OnLinearInput(group, host);
    }

    /// <summary>Adds the device rows' XᵀX to the group's Hessian sum, which must be on this device.</summary>
    private void AddGram(IHessianObserver hessians, LinearGroup group, ulong x, int m)
    {
        bool added = false;
        hessians.AccumulatorFor(group).AddVerified(m, gram => added = _algebra.TryAddGramOnDevice(gram, x, m));
        if (!added)
            throw new InvalidOperationException($"{group}: the Hessian accumulator is not on {_algebra.Device}; a GPU forward needs the GPU's accumulators");
    }

    private bool AllFinite(ulong x, long count)
    {
        _flag ??= _context.Allocate<int>(1);
        _flag.Fill(0);
        CudaKernels.FlagNonfinite.Launch(Kernels, Grid(count), Threads, 0, (x, count, _flag.Pointer));
        Span<int> flag = stackalloc int[1];
        _flag.CopyTo(flag);
        return flag[0] == 0;
    }

    /// <summary>The rotary table on the device; uploaded when the table in use changes (tables only grow; Gemma 3 alternates two).</summary>
    private void UploadRotary(RotaryTable table)
    {
        if (ReferenceEquals(table, _rotaryOnDevice))
            return;
        _cos?.Dispose();
        _sin?.Dispose();
        _cos = _context.Allocate<float>(table.AllCos.Length);
        _sin = _context.Allocate<float>(table.AllSin.Length);
        _cos.CopyFrom(table.AllCos);
        _sin.CopyFrom(table.AllSin);
        _rotaryOnDevice = table;
    }

    /// <summary>The algebra's grow-only scratch buffer of a role of the forward, reused across blocks and chunks.</summary>
    private DeviceBuffer<float> Buffer(string role, long count) => _algebra.Scratch("forward." + role, count);

    /// <summary>A grow-only float64 buffer of a role of the forward (a comparison's sums).</summary>
    private DeviceBuffer<double> Doubles(string role, long count) => Grown(_doubles, role, count);

    /// <summary>A grow-only integer buffer of a role of the forward (routing's expert choices and token lists).</summary>
    private DeviceBuffer<int> Integers(string role, long count) => Grown(_integers, role, count);

    private DeviceBuffer<T> Grown<T>(Dictionary<string, DeviceBuffer<T>> buffers, string role, long count) where T : unmanaged
    {
        if (buffers.TryGetValue(role, out var buffer) && buffer.Count >= count)
            return buffer;
        buffer?.Dispose();
        buffer = _context.Allocate<T>(count);
        buffers[role] = buffer;
        return buffer;
    }

    private CudaModule Kernels => _kernels ??= _context.Module(CudaKernels.ForwardSource, new Dictionary<string, string>());

    /// <summary>The mixture-of-experts kernels, a module of their own so that dense models never compile them.</summary>
    private CudaModule MoeKernels => _moeKernels ??= _context.Module(CudaKernels.MoeSource, new Dictionary<string, string>());

    private static uint Grid(long n) => (uint)Math.Clamp((n + Threads - 1) / Threads, 1, MaxBlocks);

    public void Dispose()
    {
        lock (_algebra.Gate)
        {
            _cos?.Dispose();
            _sin?.Dispose();
            _pointers?.Dispose();
            _flag?.Dispose();
            foreach (var buffer in _integers.Values)
                buffer.Dispose();
            _integers.Clear();
            foreach (var buffer in _doubles.Values)
                buffer.Dispose();
            _doubles.Clear();
        }
    }
}
