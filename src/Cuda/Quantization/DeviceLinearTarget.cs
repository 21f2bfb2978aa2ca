using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Regularize.Quantization;
using Converter.Trellis.Tiles;

namespace Converter.Cuda.Quantization;

/// <summary>
/// <see cref="LinearTarget"/> in a GPU's memory (<see cref="CudaLdlqSolver.Hold"/>): W goes up once (or the drift
/// target is made in its place, <see cref="TryDriftTarget"/>), is scaled and
/// rotated there (Kernels/regularize.cu, <see cref="DeviceHadamard"/>), the target is formed beside it, and only the
/// sums the scales are made from (k + n doubles), the tiles' mean squares (k·n/256 doubles) and the sampled tiles come
/// down. LDLQ's block loop then takes W's memory for its matrix (<see cref="TakeMatrix"/>: the target copied in, then
/// E, then Q) and the proxy traces read the target and Q where they are. 8 bytes a weight on the device until the linear
/// is done, where the host path's block loop held 4.
/// </summary>
internal sealed class DeviceLinearTarget : LinearTarget
{
    private const int Threads = 256;

    // Grid cap of the element-wise kernels: a grid-stride loop covers the rest.
    private const uint MaxGrid = 1 << 16;

    private readonly CudaDenseAlgebra _algebra;
    private readonly CudaContext _context;
    private readonly CudaModule _regularize;
    private readonly CudaModule _hadamard;
    private float[]? _host;
    private DeviceBuffer<float>? _w;
    private DeviceBuffer<float>? _target;
    private bool _formed;
    private bool _rotated;

    /// <summary>Allocates W and the target on <paramref name="algebra"/>'s device; W comes by <see cref="Load"/> or <see cref="TryDriftTarget"/>.</summary>
    public DeviceLinearTarget(CudaDenseAlgebra algebra, CudaModule regularize, CudaModule hadamard, int k, int n) : base(k, n)
    {
        _algebra = algebra;
        _context = algebra.Context;
        _regularize = regularize;
        _hadamard = hadamard;
        try
        {
            _w = _context.Allocate<float>((long)k * n);
            _target = _context.Allocate<float>((long)k * n);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <param name="w">W (k, n), taken over: it goes up now and later takes Q (<see cref="QuantizedArray"/>).</param>
    public override void Load(float[] w)
    {
        if (w.Length != (long)K * N)
            throw new ArgumentException($"the transposed weight has {w.Length} values, not {K}×{N}", nameof(w));
        CheckUnformed();
        W.CopyFrom(w);
        _host = w;
        Loaded = true;
    }

    public override (double MovedSquared, double NormSquared)? TryDriftTarget(ReadOnlySpan<float> weight, IResidentMatrix g, int rows, int k)
    {
        CheckUnformed();
        var made = _algebra.TryDriftTargetInto(weight, g, rows, k, K, N, W);
        Loaded |= made is not null;
        return made;
    }

    public override (double MovedSquared, double NormSquared)? TryProjectedDriftTarget(ReadOnlySpan<float> weight, IResidentSteps steps, int offset, int rows, int k)
    {
        CheckUnformed();
        var made = _algebra.TryProjectedDriftTargetInto(weight, steps, offset, rows, k, K, N, W);
        Loaded |= made is not null;
        return made;
    }

    /// <summary>The context whose memory holds W and the target.</summary>
    public CudaContext Context => _context;

    /// <summary>Whether LDLQ's block loop has taken W's memory (<see cref="TakeMatrix"/>): it then holds E and finally Q.</summary>
    public bool MatrixTaken { get; private set; }

    private DeviceBuffer<float> W => _w ?? throw new ObjectDisposedException(nameof(DeviceLinearTarget));

    private DeviceBuffer<float> LoadedW => Loaded ? W : throw new InvalidOperationException("W is loaded first");

    private DeviceBuffer<float> Target => _formed ? _target! : throw new InvalidOperationException("the target is formed by FormTarget first");

    private long Values => (long)K * N;

    private uint ElementGrid => (uint)Math.Min(MaxGrid, (Values + Threads - 1) / Threads);

    public override double[] ColumnSquares() =>
        Sums(N, squares => CudaKernels.ColumnSquares.Launch(_regularize, Grid(N), Threads, 0, (LoadedW.Pointer, K, N, squares)));

    public override void ScaleColumnsAndRotateRows(float[] factors)
    {
        if (factors.Length != N)
            throw new ArgumentException($"{factors.Length} column factors for {N} columns", nameof(factors));
        CheckUnformed();
        using var onDevice = _context.Allocate<float>(N);
        onDevice.CopyFrom(factors);
        CudaKernels.ScaleColumns.Launch(_regularize, ElementGrid, Threads, 0, (LoadedW.Pointer, N, Values, onDevice.Pointer));
        DeviceHadamard.RightMultiply(_hadamard, W.Pointer, K, N);
    }

    public override double[] RowSquares() =>
        Sums(K, squares => CudaKernels.RowSquares.Launch(_regularize, Grid(K), Threads, 0, (LoadedW.Pointer, K, N, squares)));

    public override void FormTarget(float[] su)
    {
        if (su.Length != K)
            throw new ArgumentException($"{su.Length} input scales for {K} rows", nameof(su));
        CheckUnformed();
        using var onDevice = _context.Allocate<float>(K);
        onDevice.CopyFrom(su);
        CudaKernels.DivideRows.Launch(_regularize, ElementGrid, Threads, 0, (LoadedW.Pointer, _target!.Pointer, N, Values, onDevice.Pointer));
        DeviceHadamard.LeftMultiply(_hadamard, _target.Pointer, K, N);
        _formed = true;
    }

    public override double[] TileMeanSquares()
    {
        long tiles = Values / TileLayout.Length;
        return Sums(tiles, means => CudaKernels.TileMeanSquares.Launch(_regularize, Grid(tiles), Threads, 0, (Target.Pointer, K, N, means)));
    }

    /// <summary><paramref name="count"/> float64 sums that <paramref name="launch"/> writes to the device address it is given, brought down.</summary>
    private double[] Sums(long count, Action<ulong> launch)
    {
        using var onDevice = _context.Allocate<double>(count);
        launch(onDevice.Pointer);
        var host = new double[count];
        onDevice.CopyTo(host);
        return host;
    }

    /// <summary>Blocks of <see cref="Threads"/> for one thread per item.</summary>
    private static uint Grid(long items) => checked((uint)((items + Threads - 1) / Threads));

    public override float[] Tiles(IReadOnlyList<(int Tk, int Tn)> picks)
    {
        var host = new float[picks.Count * TileLayout.Length];
        if (picks.Count == 0)
            return host;
        var pairs = new int[2 * picks.Count];
        for (int p = 0; p < picks.Count; p++)
            (pairs[2 * p], pairs[2 * p + 1]) = picks[p];
        using var onDevice = _context.Allocate<int>(pairs.Length);
        using var tiles = _context.Allocate<float>(host.Length);
        onDevice.CopyFrom(pairs);
        CudaKernels.GatherTiles.Launch(_regularize, Grid(host.Length), Threads, 0, (Target.Pointer, N, onDevice.Pointer, picks.Count, tiles.Pointer));
        tiles.CopyTo(host);
        return host;
    }

    public override float[] HostTarget()
    {
        var host = new float[Values];
        Target.CopyTo(host);
        return host;
    }

    public override float[] HostWeight()
    {
        CheckUnformed();
        var host = new float[Values];
        LoadedW.CopyTo(host);
        return host;
    }

    /// <summary>The loaded W's host array, or a new one where the drift target was made on the device (<see cref="QuantizedOnHost"/> fills it).</summary>
    public override float[] QuantizedArray() => _host ??= WeightArrays.Uninitialized(ArrayLength.Of(K, N, "quantized weight"));

    /// <summary>
    /// W's memory with the target copied in, for LDLQ's block loop to work in (it leaves Q there); W is not read again.
    /// The buffer stays this object's.
    /// </summary>
    public DeviceBuffer<float> TakeMatrix()
    {
        var target = Target;
        if (MatrixTaken)
            throw new InvalidOperationException("LDLQ has taken W's memory already");
        _context.CopyWithin(W.Pointer, target.Pointer, Values * sizeof(float));
        MatrixTaken = true;
        return W;
    }

    /// <summary>
    /// The target and, once LDLQ has run (<see cref="MatrixTaken"/>), Q, on the device. The proxy traces read in place
    /// leave E = T − Q in the target's memory and Q as it is (<see cref="Reconstruction"/> reads it after them).
    /// </summary>
    public (DeviceBuffer<float> Target, DeviceBuffer<float> Quantized) Held() =>
        MatrixTaken ? (Target, W) : throw new InvalidOperationException("Q is on the device once LDLQ has run");

    /// <summary>
    /// In W's memory, where LDLQ left Q: both rotations (<see cref="DeviceHadamard"/>, the host's bits), then the scales
    /// and the transpose into a new buffer of the HF weight (Kernels/regularize.cu, reconstruct_hf). Null before LDLQ has
    /// taken W (a run whose block loop went to the host).
    /// </summary>
    public override IResidentWeight? Reconstruction(float[] suh, float[] svh, int outFeatures, int inFeatures)
    {
        if (!MatrixTaken)
            return null;
        if (suh.Length != K || svh.Length != N || outFeatures > N || inFeatures > K)
            throw new ArgumentException($"scales of {suh.Length} and {svh.Length} for a ({K}, {N}) Q reconstructing a ({outFeatures}, {inFeatures}) weight");
        CheckUnrotated();
        _rotated = true;
        DeviceHadamard.LeftMultiply(_hadamard, W.Pointer, K, N);
        DeviceHadamard.RightMultiply(_hadamard, W.Pointer, K, N);
        var hf = _context.Allocate<float>((long)outFeatures * inFeatures);
        try
        {
            using var rowScales = _context.Allocate<float>(K);
            using var columnScales = _context.Allocate<float>(N);
            rowScales.CopyFrom(suh);
            columnScales.CopyFrom(svh);
            const int tile = 32;
            long tiles = (long)((outFeatures + tile - 1) / tile) * ((inFeatures + tile - 1) / tile);
            CudaKernels.ReconstructHf.Launch(_regularize, checked((uint)tiles), Threads, 0,
                (W.Pointer, N, rowScales.Pointer, columnScales.Pointer, hf.Pointer, outFeatures, inFeatures));
            return new CudaResidentWeight(_algebra, hf, outFeatures, inFeatures);
        }
        catch
        {
            hf.Dispose();
            throw;
        }
    }

    /// <summary>Q from W's memory, where the block loop left it (decoded from its states there).</summary>
    public override float[] QuantizedOnHost()
    {
        var (_, quantized) = Held();
        CheckUnrotated();
        var host = QuantizedArray();
        _context.MakeCurrent();
        quantized.CopyTo(host);
        return host;
    }

    private void CheckUnrotated()
    {
        if (_rotated)
            throw new InvalidOperationException("the reconstruction has rotated Q in W's memory");
    }

    private void CheckUnformed()
    {
        if (MatrixTaken)
            throw new InvalidOperationException("LDLQ has taken W's memory");
    }

    protected override void Dispose(bool disposing)
    {
        _host = null;
        Loaded = false;
        _w?.Dispose();
        _w = null;
        _target?.Dispose();
        _target = null;
    }
}
