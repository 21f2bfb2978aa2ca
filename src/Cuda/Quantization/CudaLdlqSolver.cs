using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Native;
using Converter.Cuda.Trellis;
using Converter.Regularize.Hessian;
using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Cuda.Quantization;

/// <summary>
/// LDLQ (docs/exl3-format.md §3.7) with the whole block loop on the GPU: Wr goes up once, L_u is formed there
/// (<see cref="FactorInBasis"/>) or goes up once, the states and Q come down once, and between them every step is queued on the default stream without waiting: the span and in-span
/// feedback products (cuBLAS SGEMM on the solver's <see cref="CudaDenseAlgebra"/>), the gather into position order
/// and the error rows (Kernels/ldlq.cu), the search (<see cref="CudaTileEncoder.Launch(ulong, ulong, int)"/>). (The
/// host loop copies and waits every 16-row block: ~16 s per llama-3-8b layer, ~6 s of it the search.) The semantics are those of <see cref="Ldlq.Quantize"/>; only the float summation order of the
/// feedback products differs (cuBLAS against the host's row-wise products). Device memory: 6 bytes per weight plus
/// L_u. Runs without a factor, or with an encoder that is not a <see cref="CudaTileEncoder"/> on the same GPU, go to
/// the host loop.
/// </summary>
public sealed class CudaLdlqSolver : ILdlqSolver
{
    private const int Span = 128;
    private const int Block = TileLayout.Side;
    private const int Threads = 256;

    /// <summary>
    /// Spans queued ahead of the GPU at most. Work that another thread issues on the default stream (a second linear in
    /// flight: its scale search, factor, proxy error) waits behind everything queued before it, so an unbounded queue
    /// (the driver's holds ~1,000 launches, seconds of search) would stall that thread; two spans keep the GPU fed.
    /// </summary>
    private const int SpansAhead = 2;

    // Grid cap of the whole-matrix decode: a grid-stride loop covers the rest (k·n reaches 525M values for a head).
    private const uint MaxGrid = 1 << 16;

    private readonly CudaDenseAlgebra _algebra;
    private readonly BatchRendezvous<(int K, CudaTileEncoder Encoder), DeviceProblem> _batches = new();

    /// <summary>Per padded input width k, problems being factored on this device or factored and not yet at their block loop (<see cref="Expected"/>).</summary>
    private readonly Dictionary<int, int> _expected = [];
    private readonly Lock _expectedGate = new();

    /// <summary>
    /// How long a batch's leader waits for a problem of its width that was factored and has not yet arrived (the
    /// factor precedes the block loop by the matrix's upload: ~57 ms for an 8B's up_proj behind gate_proj, 12 ms for
    /// v_proj behind k_proj). Together they take one launch per block where each alone took one after the other.
    /// </summary>
    private static readonly TimeSpan Gather = TimeSpan.FromMilliseconds(150);
    private CudaModule? _kernels;
    private CudaModule? _hadamardKernels;
    private CudaModule? _regularizeKernels;

    /// <param name="algebra">The GPU's algebra: its context, its cuBLAS handle (under its gate) for the products.</param>
    public CudaLdlqSolver(CudaDenseAlgebra algebra) => _algebra = algebra;

    public string Device => _algebra.Device;

    /// <summary>Block loops run so far and the problems they held: more problems than runs means linears shared searches.</summary>
    public (int Batches, int Problems) Runs => _batches.Runs;

    /// <summary>Kernels/ldlq.cu, compiled on first use.</summary>
    private CudaModule Kernels => _kernels ??= _algebra.Context.Module(CudaKernels.LdlqSource, new Dictionary<string, string>());

    /// <summary>Kernels/hadamard.cu, compiled on first use.</summary>
    private CudaModule HadamardKernels => _hadamardKernels ??= _algebra.Context.Module(CudaKernels.HadamardSource, new Dictionary<string, string>());

    /// <summary>Kernels/regularize.cu, compiled on first use.</summary>
    private CudaModule RegularizeKernels => _regularizeKernels ??= _algebra.Context.Module(CudaKernels.RegularizeSource, new Dictionary<string, string>());

    /// <summary>
    /// W and its target on this GPU (<see cref="DeviceLinearTarget"/>) when <paramref name="encoder"/> searches here, so
    /// that the regularization, the scale search's tiles, the block loop and the proxy traces read them in place; else
    /// on the host.
    /// </summary>
    public LinearTarget Hold(int k, int n, ITileEncoder encoder) =>
        encoder is CudaTileEncoder gpu && gpu.Context == _algebra.Context
            ? new DeviceLinearTarget(_algebra, RegularizeKernels, HadamardKernels, k, n)
            : new HostLinearTarget(k, n);

    /// <summary>
    /// A target held on this device goes to the block loop in place (its W's memory becomes the loop's matrix, which ends
    /// holding Q, and Q stays there: <see cref="LinearTarget.QuantizedOnHost"/> brings it down for a caller that reads
    /// it on the host); any other through the host arrays.
    /// </summary>
    public HeldLdlqResult Quantize(LinearTarget target, BasisFactor? factor, ITileEncoder encoder)
    {
        if (target is DeviceLinearTarget held && held.Context == _algebra.Context
            && factor is DeviceBasisFactor { DeviceFactor: { } lu } device && device.Algebra == _algebra && encoder is CudaTileEncoder gpu && gpu.Context == _algebra.Context)
        {
            if (lu.Count != (long)target.K * target.K)
                throw new ArgumentException($"L_u must be {target.K}×{target.K}, got {lu.Count} values", nameof(factor));
            return new HeldLdlqResult(SolveOnDevice(held.TakeMatrix(), default, target.K, target.N, lu, gpu, null, device.Arrival), null);
        }
        var result = Quantize(target.HostTarget(), target.K, target.N, factor, encoder, target.QuantizedArray());
        return new HeldLdlqResult(result.States, result.Quantized);
    }

    /// <summary>
    /// <see cref="BlockLdl.Decompose"/> on the device: the Hessian goes up once as float and the factor comes down
    /// once as float, instead of float64 copies both ways and the strict block factor on the host (3.6 s of a
    /// llama-3-8b down_proj's 8 s, k = 14336).
    /// </summary>
    public BlockLdlResult Factor(float[] hessian, int k, double sigma, IDenseAlgebra algebra)
    {
        if (k % BlockLdl.BlockSize != 0 || hessian.Length != (long)k * k)
            throw new ArgumentException($"Hessian must be k×k with k a multiple of {BlockLdl.BlockSize}");
        using var h = _algebra.Context.Allocate<float>((long)k * k);
        h.CopyFrom(hessian);
        int? retries = FactorOnDevice(h, h, k, BlockLdl.MeanDiagonal<float>(hessian, k), sigma, () => h.CopyFrom(hessian));
        if (retries is null)
            return new BlockLdlResult(null, BlockLdl.MaxRetries);
        var factor = new float[(long)k * k];
        h.CopyTo(factor);
        return new BlockLdlResult(factor, retries.Value);
    }

    /// <summary>
    /// H' and L_u on the device: the damped Hessian goes up once, is scaled and rotated there to the host's bits
    /// (<see cref="DeviceHadamard"/>), and factored; L_u stays for the block loop and H' for the proxy traces, so
    /// nothing k² comes down (a 70B down_proj's H' and L_u took 7.6 s on and off the device). A lean run brings H'
    /// down before factoring and lets L_u take its memory, so the device holds the 12 bytes per k² entry it did before.
    /// </summary>
    public BasisFactor FactorInBasis(GroupHessian hessian, ReadOnlySpan<float> inputScale, double sigma, IDenseAlgebra algebra, bool lastUse = false)
    {
        if (hessian.FallbackReason is not null)
            throw new InvalidOperationException("no Hessian in fallback mode");
        int k = hessian.PaddedK;
        if (inputScale.Length != k)
            throw new ArgumentException($"{inputScale.Length} input scales for a Hessian {k} wide", nameof(inputScale));
        var context = _algebra.Context;
        // Expected at the block loop from now, not once factored: factors wait for each other under the algebra's lock,
        // and gate_proj's was still waiting when up_proj reached the loop, whose batch then left without it (an 8B's
        // gate 1.13 s and up 1.08 s one after the other, session 19). A problem arrives within its factor's time.
        var expected = Expect(k);
        DeviceBuffer<float>? basis = null;
        DeviceBuffer<float>? factor = null;
        try
        {
            basis = DampedOnDevice(hessian, k, lastUse);
            var diagonal = new float[k];
            using (var scales = context.Allocate<float>(k))
            using (var onDevice = context.Allocate<float>(k))
            {
                scales.CopyFrom(inputScale);
                DeviceHadamard.LeftMultiply(HadamardKernels, basis.Pointer, k, k, scales.Pointer);
                DeviceHadamard.RightMultiply(HadamardKernels, basis.Pointer, k, k);
                CudaKernels.CopyDiagonal.Launch(HadamardKernels, (uint)((k + Threads - 1) / Threads), Threads, 0, (basis.Pointer, k, onDevice.Pointer));
                onDevice.CopyTo(diagonal);
            }
            double diagMean = BlockLdl.MeanOf(diagonal);
            if (_algebra.IsLean)
            {
                var host = new float[(long)k * k];
                basis.CopyTo(host);
                var leanBasis = basis;
                int? leanRetries = FactorOnDevice(basis, basis, k, diagMean, sigma, () => leanBasis.CopyFrom(host));
                if (leanRetries is null)
                {
                    basis.Dispose();
                    expected.Arrive();
                    return new DeviceBasisFactor(_algebra, k, BlockLdl.MaxRetries, null, host, null);
                }
                return new DeviceBasisFactor(_algebra, k, leanRetries.Value, null, host, basis, expected);
            }
            factor = context.Allocate<float>((long)k * k);
            int? retries = FactorOnDevice(basis, factor, k, diagMean, sigma, restore: null);
            if (retries is null)
            {
                factor.Dispose();
                expected.Arrive();
                return new DeviceBasisFactor(_algebra, k, BlockLdl.MaxRetries, basis, null, null);
            }
            return new DeviceBasisFactor(_algebra, k, retries.Value, basis, null, factor, expected);
        }
        catch
        {
            expected.Arrive();
            basis?.Dispose();
            factor?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A device buffer of the damped H that this call may rotate in place: the group's device copy itself when its one
    /// linear may take it, a device-to-device copy of it when it is on this GPU, else an upload of the host copy.
    /// </summary>
    private DeviceBuffer<float> DampedOnDevice(GroupHessian hessian, int k, bool lastUse)
    {
        var context = _algebra.Context;
        if (hessian.Resident is CudaResidentMatrix here && here.Algebra == _algebra)
        {
            if (lastUse && hessian.TakeResident() is CudaResidentMatrix taken)
                return taken.Release();
            var copy = context.Allocate<float>((long)k * k);
            context.CopyWithin(copy.Pointer, here.Values.Pointer, copy.Bytes);
            return copy;
        }
        // The host copy first: on another GPU's copy it comes down through that GPU's context.
        var damped = hessian.Damped!;
        var uploaded = context.Allocate<float>((long)k * k);
        uploaded.CopyFrom(damped);
        return uploaded;
    }

    /// <summary>
    /// The attempts of <see cref="BlockLdl.Decompose"/> on the device: H at <paramref name="h"/> widened with each
    /// attempt's damping, Cholesky, the strict block factor into <paramref name="factor"/> (which may be h itself:
    /// <paramref name="restore"/> then puts H back after a factor that came out non-finite). Returns the retries, or
    /// null when no attempt factored.
    /// </summary>
    private int? FactorOnDevice(DeviceBuffer<float> h, DeviceBuffer<float> factor, int k, double diagMean, double sigma, Action? restore)
    {
        var context = _algebra.Context;
        uint grid = (uint)Math.Min(MaxGrid, ((long)k * k + Threads - 1) / Threads);
        lock (_algebra.Gate)
        {
            using var l = context.Allocate<double>((long)k * k);
            using var bad = context.Allocate<int>(1);
            Span<int> flag = stackalloc int[1];
            for (int attempt = 0; attempt <= BlockLdl.MaxRetries; attempt++)
            {
                CudaKernels.LdlDampedCopy.Launch(Kernels, grid, Threads, 0, (h.Pointer, l.Pointer, k, BlockLdl.Damping(attempt, sigma, diagMean)));
                if (!_algebra.TryCholeskyOnDevice(l.Pointer, k))
                    continue;
                factor.Fill(0);
                bad.Fill(0);
                CudaKernels.LdlStrictBlockFactor.Launch(Kernels, (uint)(k / BlockLdl.BlockSize), Threads, 0, (l.Pointer, k, factor.Pointer, bad.Pointer));
                bad.CopyTo(flag);
                if (flag[0] == 0)
                    return attempt;
                // A non-finite L counts as a failed Cholesky (CudaDenseAlgebra.TryCholesky): retry with more damping.
                if (ReferenceEquals(factor, h))
                    restore!();
            }
        }
        return null;
    }

    /// <summary>On the device; without a factor (no feedback) or with another device's encoder, the host loop.</summary>
    public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, float[]? factor, ITileEncoder encoder, float[]? quantizedInto = null)
    {
        if (factor is null || encoder is not CudaTileEncoder gpu || gpu.Context != _algebra.Context)
            return Ldlq.Quantize(wr, k, n, factor, encoder, quantizedInto);
        CheckShapes(wr, k, n, factor.Length);
        using var lu = _algebra.Context.Allocate<float>((long)k * k);
        lu.CopyFrom(factor);
        return QuantizeOnDevice(null, wr, k, n, lu, gpu, quantizedInto);
    }

    /// <summary>With a factor formed on this device, read where it is; any other goes through the host array.</summary>
    public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, BasisFactor? factor, ITileEncoder encoder, float[]? quantizedInto = null)
    {
        if (factor is DeviceBasisFactor { DeviceFactor: { } lu } device && device.Algebra == _algebra && encoder is CudaTileEncoder gpu && gpu.Context == _algebra.Context)
        {
            CheckShapes(wr, k, n, lu.Count);
            return QuantizeOnDevice(null, wr, k, n, lu, gpu, quantizedInto, device.Arrival);
        }
        float[]? host = factor?.FeedbackFactor();
        return Quantize(wr, k, n, host, encoder, quantizedInto);
    }

    /// <summary>
    /// A share of a column split: the whole width runs (its feedback products are cuBLAS SGEMMs at the whole problem's
    /// shape, so each column sums in the order the unsplit problem's does: at a share's own width cuBLAS picked another
    /// kernel and the bits differed, `LdlqSolverTests.ColumnSharesGiveTheUnsplitResult` on an H100), and only the
    /// share's tiles are searched. The products are ~1% of an 8B linear's LDLQ; the search is the rest. On another GPU
    /// the same shapes give the same bits where cuBLAS picks the same kernels: the same architecture and SM count
    /// (cuBLAS's stated condition for bitwise reproducibility).
    /// </summary>
    public LdlqResult QuantizeColumns(float[] wr, int k, int n, ColumnRange share, float[]? factor, ITileEncoder encoder)
    {
        if (factor is null || encoder is not CudaTileEncoder gpu || gpu.Context != _algebra.Context)
            return Ldlq.Quantize(ColumnSplit.Columns(wr, k, n, share), k, share.Count, factor, encoder);
        CheckShapes(wr, k, n, factor.Length);
        using var lu = _algebra.Context.Allocate<float>((long)k * k);
        lu.CopyFrom(factor);
        return ShareOf(QuantizeOnDevice(null, wr, k, n, lu, gpu, null, share: CheckShare(n, share)), k, n, share);
    }

    /// <inheritdoc cref="QuantizeColumns(float[], int, int, ColumnRange, float[], ITileEncoder)"/>
    public LdlqResult QuantizeColumns(float[] wr, int k, int n, ColumnRange share, BasisFactor? factor, ITileEncoder encoder)
    {
        if (factor is DeviceBasisFactor { DeviceFactor: { } lu } device && device.Algebra == _algebra && encoder is CudaTileEncoder gpu && gpu.Context == _algebra.Context)
        {
            CheckShapes(wr, k, n, lu.Count);
            return ShareOf(QuantizeOnDevice(null, wr, k, n, lu, gpu, null, device.Arrival, CheckShare(n, share)), k, n, share);
        }
        float[]? host = factor?.FeedbackFactor();
        return QuantizeColumns(wr, k, n, share, host, encoder);
    }

    private static ColumnRange CheckShare(int n, ColumnRange share)
    {
        if (share.Start < 0 || share.Count <= 0 || share.Start % Span != 0 || share.Count % Span != 0 || share.Start + share.Count > n)
            throw new ArgumentException($"a share must be whole {Span}-column spans within {n} columns, got [{share.Start}, {share.Start + share.Count})", nameof(share));
        return share;
    }

    private static LdlqResult ShareOf(LdlqResult whole, int k, int n, ColumnRange share) =>
        new(ColumnSplit.TileStates(whole.States, k, n, share), ColumnSplit.Columns(whole.Quantized, k, n, share));

    private static void CheckShapes(ReadOnlySpan<float> wr, int k, int n, long factorValues)
    {
        if (k % Span != 0 || n % Span != 0 || wr.Length != (long)k * n)
            throw new ArgumentException($"LDLQ needs k and n padded to multiples of {Span} (docs/exl3-format.md §3.1), got ({k}, {n})");
        if (factorValues != (long)k * k)
            throw new ArgumentException($"L_u must be {k}×{k}, got {factorValues} values", "factor");
    }

    /// <param name="share">Columns whose tiles alone are searched (the others' results are meaningless); such a problem runs in a batch of its own.</param>
    /// <param name="matrix">Wr already on the device, which the loop works in (not owned); null to take <paramref name="wr"/> up.</param>
    private LdlqResult QuantizeOnDevice(DeviceBuffer<float>? matrix, ReadOnlySpan<float> wr, int k, int n, DeviceBuffer<float> lu, CudaTileEncoder encoder, float[]? quantizedInto,
        Expected? expected = null, ColumnRange? share = null)
    {
        var quantized = Ldlq.QuantizedArray(quantizedInto, (long)k * n);
        return new LdlqResult(SolveOnDevice(matrix, wr, k, n, lu, encoder, quantized, expected, share), quantized);
    }

    /// <summary>
    /// The block loop of one problem (batched with others of its width), then its states brought down and Q decoded
    /// from them into the matrix: into <paramref name="quantized"/> too when given, else left there (a held target's).
    /// </summary>
    private ushort[] SolveOnDevice(DeviceBuffer<float>? matrix, ReadOnlySpan<float> wr, int k, int n, DeviceBuffer<float> lu, CudaTileEncoder encoder, float[]? quantized,
        Expected? expected = null, ColumnRange? share = null)
    {
        using var problem = new DeviceProblem(_algebra.Context, matrix, wr, k, n, lu, share);
        expected?.Arrive();
        int capacity = BatchCapacity(encoder);
        _batches.Join((k, encoder), problem, share is null ? n / Block : capacity, capacity, batch => RunBatch(batch, k, encoder), () => IsExpected(k), Gather);
        return problem.Download(Kernels, encoder.DeviceTable, quantized);
    }

    /// <summary>A problem of width k being factored here, counted as on its way to the block loop until it arrives, fails to factor, or its factor goes.</summary>
    private Expected Expect(int k)
    {
        lock (_expectedGate)
            _expected[k] = _expected.GetValueOrDefault(k) + 1;
        return new Expected(this, k);
    }

    private bool IsExpected(int k)
    {
        lock (_expectedGate)
            return _expected.GetValueOrDefault(k) > 0;
    }

    /// <summary>A problem on its way to the block loop; <see cref="Arrive"/> (idempotent) stops counting it.</summary>
    internal sealed class Expected(CudaLdlqSolver solver, int k)
    {
        private int _arrived;

        public void Arrive()
        {
            if (Interlocked.Exchange(ref _arrived, 1) != 0)
                return;
            lock (solver._expectedGate)
            {
                if (--solver._expected[k] == 0)
                    solver._expected.Remove(k);
            }
        }
    }

    /// <summary>
    /// Waves of the encoder's tile slots one batched launch may hold. A 16-row block costs ~1.07 ms up to one wave of
    /// tiles whatever its width (an 8B's k_proj's 64 tiles as long as q_proj's 256, session 17's timeline), and a wave
    /// more adds less than a launch of its own: at 2 waves an 8B's gate_proj and up_proj (896 tiles a block, 3.4 waves
    /// each) could not share a batch and ran 1.1 s and 1.0 s one after the other. At 8 they share one; a batch only adds
    /// the staging of its blocks' tiles and states (6 bytes a weight of one block row per problem) to device memory.
    /// </summary>
    internal const int BatchWaves = 8;

    /// <summary>
    /// Tiles per block row that problems of one width k searched in one launch hold at most (each problem's n/16):
    /// <see cref="BatchWaves"/> waves of the encoder's tile slots (a launch of n/16 tiles alone fills 48 of an H200's 264
    /// slots for a 768-wide expert); a larger problem runs alone.
    /// </summary>
    internal static int BatchCapacity(CudaTileEncoder encoder) => BatchWaves * encoder.ConcurrentTiles;

    /// <summary>
    /// The block loop (§3.7) of several problems of one width k at once (their n may differ: q, k and v): per block each
    /// problem's target, feedback and tile gather into its own slots, then one search over all their tiles, then each
    /// problem's states and error rows. Per problem the operations and their order are those of a batch of one, and the
    /// search treats every tile alone, so each result is the one it would get alone.
    /// </summary>
    private void RunBatch(IReadOnlyList<DeviceProblem> problems, int k, CudaTileEncoder encoder)
    {
        var context = _algebra.Context;
        if (problems.Count > 1 && problems.Any(p => p.Searched.Count != p.N / Block))
            throw new InvalidOperationException("a column share runs in a batch of its own");
        // Problem i's block of tiles (and of states) starts at offsets[i] values into the batch's buffers.
        var offsets = new long[problems.Count + 1];
        for (int i = 0; i < problems.Count; i++)
            offsets[i + 1] = offsets[i] + (long)Block * problems[i].N;
        using var target = context.Allocate<float>((long)Block * problems.Max(p => p.N));
        using var tiles = context.Allocate<float>(offsets[^1]);
        using var states = problems.Count > 1 ? context.Allocate<ushort>(offsets[^1]) : null;
        var queued = new Queue<CudaEvent>();
        try
        {
            for (int spanStart = k - Span; spanStart >= 0; spanStart -= Span)
            {
                QueueSpan(problems, offsets, target, tiles, states, k, spanStart, encoder);
                queued.Enqueue(CudaEvent.Record(context));
                if (queued.Count > SpansAhead)
                {
                    using var oldest = queued.Dequeue();
                    oldest.Synchronize();
                }
            }
        }
        finally
        {
            foreach (var mark in queued)
                mark.Dispose();
        }
    }

    /// <summary>Queues one 128-row span of the block loop (§3.7) for every problem: its span feedback, then its blocks from the last to the first.</summary>
    private void QueueSpan(IReadOnlyList<DeviceProblem> problems, long[] offsets, DeviceBuffer<float> target, DeviceBuffer<float> tiles, DeviceBuffer<ushort>? batchStates,
        int k, int spanStart, CudaTileEncoder encoder)
    {
        var table = encoder.DeviceTable;
        int spanEnd = spanStart + Span;
        if (spanEnd < k)
        {
            foreach (var p in problems)
                FeedbackProduct(p.Matrix, p.Lu, k, p.N, spanStart, Span, spanEnd, k, 0f, p.SpanFeedback.Pointer);
        }

        for (int row0 = spanEnd - Block; row0 >= spanStart; row0 -= Block)
        {
            int after = row0 + Block;
            for (int i = 0; i < problems.Count; i++)
            {
                var p = problems[i];
                int n = p.N, blockValues = Block * n;
                uint blockGrid = (uint)((blockValues + Threads - 1) / Threads);
                ulong rows = Offset(p.Matrix.Pointer, (long)row0 * n, sizeof(float));
                CudaKernels.LdlqBlockTarget.Launch(Kernels, blockGrid, Threads, 0,
                    (rows, Offset(p.SpanFeedback.Pointer, (long)(row0 - spanStart) * n, sizeof(float)), target.Pointer, blockValues));
                if (after < spanEnd)
                    FeedbackProduct(p.Matrix, p.Lu, k, n, row0, Block, after, spanEnd, 1f, target.Pointer);
                // Tile-major [tk][tn][256] puts block row0's tiles contiguously at row0·n; problem i's go to its slots.
                CudaKernels.LdlqGatherTiles.Launch(Kernels, blockGrid, Threads, 0, (target.Pointer, n, Offset(tiles.Pointer, offsets[i], sizeof(float))));
            }
            // One problem's search writes its states in place (a share's only its own tiles); a batch's go to the staging
            // buffer, then to each problem.
            var (first, count) = problems.Count == 1 ? problems[0].Searched : (0, (int)(offsets[^1] / TileLayout.Length));
            ulong searched = batchStates?.Pointer ?? Offset(problems[0].States.Pointer, (long)row0 * problems[0].N + (long)first * TileLayout.Length, sizeof(ushort));
            encoder.Launch(Offset(tiles.Pointer, (long)first * TileLayout.Length, sizeof(float)), searched, count);
            for (int i = 0; i < problems.Count; i++)
            {
                var p = problems[i];
                int n = p.N, blockValues = Block * n;
                uint blockGrid = (uint)((blockValues + Threads - 1) / Threads);
                ulong blockStates = Offset(p.States.Pointer, (long)row0 * n, sizeof(ushort));
                if (batchStates is not null)
                    _algebra.Context.CopyWithin(blockStates, Offset(batchStates.Pointer, offsets[i], sizeof(ushort)), (long)blockValues * sizeof(ushort));
                CudaKernels.LdlqErrorRows.Launch(Kernels, blockGrid, Threads, 0, (blockStates, table.Pointer, n, Offset(p.Matrix.Pointer, (long)row0 * n, sizeof(float))));
            }
        }
    }

    /// <summary>
    /// C (rows×n, row-major) = beta·C + lt[row0..row0+rows, from..to) · E[from..to, :), lt = L_uᵀ read from the
    /// row-major L_u: the span feedback (beta 0) and the in-span feedback (beta 1) of §3.7.
    /// </summary>
    internal void FeedbackProduct(DeviceBuffer<float> error, DeviceBuffer<float> lu, int k, int n, int row0, int rows, int from, int to, float beta, ulong c)
    {
        // Row-major C = A·B is column-major Cᵀ (n×rows) = Eᵀ (n×m) · Aᵀ (m×rows). Aᵀ[a, b] = lt[row0+b, from+a]
        // = L_u[from+a, row0+b]: the column-major rows×m matrix at L_u + from·k + row0 (ld k), transposed.
        lock (_algebra.Gate)
        {
            _algebra.Sgemm(CudaMathLibraries.OpN, CudaMathLibraries.OpT, n, rows, to - from,
                Offset(error.Pointer, (long)from * n, sizeof(float)), n,
                Offset(lu.Pointer, (long)from * k + row0, sizeof(float)), k, beta, c, n);
        }
    }

    private static ulong Offset(ulong pointer, long elements, int elementBytes) => pointer + (ulong)elements * (ulong)elementBytes;

    /// <summary>
    /// One problem's device memory: the matrix (Wr until a block is quantized, then E = Wr − Q, then Q), L_u, the
    /// states and its span feedback. Uploaded and downloaded by its own thread; the block loop may run on another.
    /// </summary>
    private sealed class DeviceProblem : IDisposable
    {
        private readonly CudaContext _context;
        private readonly bool _ownsMatrix;

        /// <param name="matrix">Wr on the device, worked in and not owned (it ends holding Q); null to allocate one and take <paramref name="wr"/> up.</param>
        /// <param name="lu">L_u on the device, read (not owned) until the problem is disposed.</param>
        /// <param name="share">Columns whose tiles alone are searched; null for all.</param>
        public DeviceProblem(CudaContext context, DeviceBuffer<float>? matrix, ReadOnlySpan<float> wr, int k, int n, DeviceBuffer<float> lu, ColumnRange? share)
        {
            _context = context;
            N = n;
            Searched = share is { } s ? (s.Start / Block, s.Count / Block) : (0, n / Block);
            long size = (long)k * n;
            if (matrix is not null && matrix.Count != size)
                throw new ArgumentException($"the matrix on the device has {matrix.Count} values, not {k}×{n}", nameof(matrix));
            _ownsMatrix = matrix is null;
            Matrix = matrix ?? context.Allocate<float>(size);
            // L_u as given: read column-major (ld k) it is lt = L_uᵀ, so there is no transpose (FeedbackProduct).
            Lu = lu;
            States = context.Allocate<ushort>(size);
            SpanFeedback = context.Allocate<float>((long)Span * n);
            if (_ownsMatrix)
                Matrix.CopyFrom(wr);
            // The last span has no later rows: its feedback is zero. Every other span's product overwrites it (beta 0).
            SpanFeedback.Fill(0);
            // Tiles outside a share are never searched: their error rows read state 0, not whatever the memory held.
            if (share is not null)
                States.Fill(0);
        }

        /// <summary>The first tile of a 16-row block that is searched, and how many: the whole block row unless the problem is a share.</summary>
        public (int First, int Count) Searched { get; }

        /// <summary>Output features (padded): n/16 tiles per 16-row block.</summary>
        public int N { get; }

        public DeviceBuffer<float> Matrix { get; }

        public DeviceBuffer<float> Lu { get; }

        public DeviceBuffer<ushort> States { get; }

        public DeviceBuffer<float> SpanFeedback { get; }

        /// <summary>The states; Q decoded from them into the matrix, and into <paramref name="quantized"/> (all of it overwritten) when given.</summary>
        public ushort[] Download(CudaModule kernels, DeviceBuffer<float> table, float[]? quantized)
        {
            long size = Matrix.Count;
            var states = new ushort[size];
            States.CopyTo(states);
            CudaKernels.LdlqDecode.Launch(kernels, (uint)Math.Min(MaxGrid, (size + Threads - 1) / Threads), Threads, 0,
                (States.Pointer, table.Pointer, N, size, Matrix.Pointer));
            if (quantized is not null)
            {
                Matrix.CopyTo(quantized);
            }
            else
            {
                // The decode reads the states' memory, which Dispose frees next: wait for it here, as Q's copy did.
                using var decodedMark = CudaEvent.Record(_context);
                decodedMark.Synchronize();
            }
            return states;
        }

        public void Dispose()
        {
            if (_ownsMatrix)
                Matrix.Dispose();
            States.Dispose();
            SpanFeedback.Dispose();
        }
    }
}
