using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Cuda.Trellis;

/// <summary>
/// The tail-biting Viterbi search of docs/exl3-format.md §2.4 on a GPU (Kernels/viterbi.cu). The search compares fp16
/// costs against the table rounded to fp16 (exact for the codebooks' own values, §1); the decoded values written
/// back are the caller's float table entries, exactly as the CPU encoder writes them. Calls are serialized.
/// </summary>
public sealed class CudaTileEncoder : ITileEncoder, IDisposable
{
    private const int ThreadsPerBlock = 512;
    private const int Length = TileLayout.Length;

    // Tiles per launch: bounds the staging buffers (64 MiB of targets) while keeping every SM busy for many tiles.
    private const int MaxTilesPerLaunch = 1 << 16;

    private readonly CudaContext _context;
    private float[] _table;
    private readonly CudaModule _module;
    private readonly DeviceBuffer<ushort> _halfTable;
    private readonly DeviceBuffer<ushort> _history;
    private readonly int _blocks;
    private readonly int _sharedBytes;
    private readonly Lock _gate = new();
    private DeviceBuffer<float>? _targets;
    private DeviceBuffer<ushort>? _states;
    private DeviceBuffer<float>? _deviceTable;

    public CudaTileEncoder(CudaContext context, ReadOnlyMemory<float> table, int bits)
    {
        TileLayout.CheckBits(bits);
        if (table.Length != CodebookTable.Size)
            throw new ArgumentException("a codebook table has 65536 entries", nameof(table));
        if (context.Device.Major < 8)
            throw new CudaException($"{context.Device}: the GPU encoder needs compute capability 8.0 or newer (f16x2 min, warp reductions)");
        _context = context;
        _table = table.ToArray();
        Bits = bits;
        TilesPerBlock = TilesPerBlockAt(bits);
        _module = LoadKernels(context, bits);
        _sharedBytes = SharedBytes(bits, TilesPerBlock);
        _blocks = context.Device.Multiprocessors;

        _halfTable = context.Allocate<ushort>(CodebookTable.Size);
        UploadHalfTable();
        _history = context.Allocate<ushort>((long)_blocks * TilesPerBlock * Length * Nodes);
    }

    /// <summary>
    /// Searches <paramref name="table"/> from now on, keeping the compiled module and the back-pointer history
    /// (2.2 GB at K = 2 on an H200): what a multiplier screen does between candidates instead of a new encoder.
    /// </summary>
    public void UseTable(ReadOnlyMemory<float> table)
    {
        if (table.Length != CodebookTable.Size)
            throw new ArgumentException("a codebook table has 65536 entries", nameof(table));
        lock (_gate)
        {
            _table = table.ToArray();
            UploadHalfTable();
            _deviceTable?.Dispose();
            _deviceTable = null;
        }
    }

    private void UploadHalfTable()
    {
        var half = new ushort[CodebookTable.Size];
        for (int i = 0; i < half.Length; i++)
            half[i] = BitConverter.HalfToUInt16Bits((Half)_table[i]);
        _halfTable.CopyFrom(half);
    }

    /// <summary>
    /// The module of Kernels/viterbi.cu for K = <paramref name="bits"/>, compiled once per context.
    /// </summary>
    private static CudaModule LoadKernels(CudaContext context, int bits) => context.Module(CudaKernels.ViterbiSource, new Dictionary<string, string>
    {
        ["TRELLIS_K"] = bits.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["TRELLIS_TILES"] = TilesPerBlockAt(bits).ToString(System.Globalization.CultureInfo.InvariantCulture),
    });

    /// <summary>Tiles one block searches side by side: two, except at K = 1 whose cost buffers alone take 128 KiB of shared memory.</summary>
    internal static int TilesPerBlockAt(int bits) => bits == 1 ? 1 : 2;

    public int Bits { get; }

    /// <summary>The GPU the search runs on.</summary>
    internal CudaContext Context => _context;

    /// <summary>
    /// The float table on the device, uploaded on first use and freed with the encoder: the decoded values, as
    /// <see cref="Encode"/> writes them, for code that keeps the states on the device (device LDLQ).
    /// </summary>
    internal DeviceBuffer<float> DeviceTable
    {
        get
        {
            lock (_gate)
            {
                if (_deviceTable is null)
                {
                    var table = _context.Allocate<float>(_table.Length);
                    table.CopyFrom(_table);
                    _deviceTable = table;
                }
                return _deviceTable;
            }
        }
    }

    public string Device => $"cuda:{_context.Device.Ordinal}";
    public int TilesPerBlock { get; }

    /// <summary>Tiles the GPU searches at once: one thread block per multiprocessor, <see cref="TilesPerBlock"/> each.</summary>
    public int ConcurrentTiles => _blocks * TilesPerBlock;
    private int Nodes => 1 << (16 - Bits);

    /// <summary>Registers and spilled bytes per thread of the compiled search kernel.</summary>
    public (int Registers, int LocalBytes) KernelResources => _module.Resources(CudaKernels.ViterbiTiles);

    /// <inheritdoc />
    public void Encode(ReadOnlyMemory<float> targets, Memory<ushort> states, Memory<float> decoded)
    {
        int tiles = targets.Length / Length;
        if (targets.Length != tiles * Length || states.Length != targets.Length)
            throw new ArgumentException("targets and states must hold whole tiles of 256 values");
        if (!decoded.IsEmpty && decoded.Length != targets.Length)
            throw new ArgumentException("decoded must be empty or as long as targets", nameof(decoded));
        lock (_gate)
        {
            for (int first = 0; first < tiles; first += MaxTilesPerLaunch)
            {
                int count = Math.Min(MaxTilesPerLaunch, tiles - first);
                EncodeOnDevice(targets.Span.Slice(first * Length, count * Length), states.Span.Slice(first * Length, count * Length), count);
            }
        }
        if (!decoded.IsEmpty)
        {
            var s = states.Span;
            var d = decoded.Span;
            for (int i = 0; i < s.Length; i++)
                d[i] = _table[s[i]];
        }
    }

    /// <summary>
    /// Seconds of the search alone (median of <paramref name="repeats"/> launches after one warm-up), with the tiles
    /// already on the device: what a benchmark of the kernel should report.
    /// </summary>
    public double MeasureSearchSeconds(ReadOnlySpan<float> targets, int repeats)
    {
        int tiles = targets.Length / Length;
        lock (_gate)
        {
            using var input = _context.Allocate<float>(targets.Length);
            using var output = _context.Allocate<ushort>(targets.Length);
            input.CopyFrom(targets);
            Launch(input, output, tiles);
            _context.Synchronize();
            var times = new List<double>();
            for (int r = 0; r < repeats; r++)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                Launch(input, output, tiles);
                _context.Synchronize();
                times.Add(clock.Elapsed.TotalSeconds);
            }
            times.Sort();
            return times[times.Count / 2];
        }
    }

    /// <summary>
    /// The issue-rate ceiling in tiles/s: both passes visit 256 positions × 65536 candidates, 2.5 f16x2 instructions
    /// per two candidates (subtract, fma, and half of a three-input min: ptxas fuses two mins into one VHMNMX), and
    /// each SM issues 4 × 32 lanes per clock. Until session 11 this counted 3 instructions (665k tiles/s on an H200
    /// instead of 798k), so "of limit" figures recorded before then read 20% higher.
    /// </summary>
    public static double ArithmeticLimit(CudaDeviceInfo device) =>
        device.Multiprocessors * 128.0 * device.ClockKHz * 1e3 / (2 * 256 * 65536 / 2 * 2.5);

    /// <summary>The search alone on tiles already on the device.</summary>
    internal void Launch(DeviceBuffer<float> targets, DeviceBuffer<ushort> states, int tiles) => Launch(targets.Pointer, states.Pointer, tiles);

    /// <summary>
    /// The search on device addresses (async, default stream): <paramref name="tiles"/>·256 targets in position order
    /// at <paramref name="targets"/>, as many states written at <paramref name="states"/>, which may lie inside a
    /// larger buffer (device LDLQ writes a block's states straight into the tile-major array).
    /// </summary>
    internal void Launch(ulong targets, ulong states, int tiles) =>
        CudaKernels.ViterbiTiles.Launch(_module, (uint)Math.Min(_blocks, (tiles + TilesPerBlock - 1) / TilesPerBlock), ThreadsPerBlock, _sharedBytes,
            (targets, tiles, _halfTable.Pointer, states, _history.Pointer));

    private void EncodeOnDevice(ReadOnlySpan<float> targets, Span<ushort> states, int tiles)
    {
        if (_targets is null || _targets.Count < targets.Length)
        {
            _targets?.Dispose();
            _states?.Dispose();
            _targets = _context.Allocate<float>(targets.Length);
            _states = _context.Allocate<ushort>(targets.Length);
        }
        _targets.CopyFrom(targets);
        Launch(_targets, _states!, tiles);
        _states!.CopyTo(states);
    }

    /// <summary>
    /// Dynamic shared memory of the kernel (sizeof(BlockShared)): two 8-byte step barriers; per tile the targets, two
    /// cost buffers and per-warp minima; then the reduction slots; rounded up to the struct's 8-byte alignment.
    /// </summary>
    internal static int SharedBytes(int bits, int tiles)
    {
        int nodes = 1 << (16 - bits);
        int costWords = bits <= 3 ? nodes / 2 : nodes;
        int perTile = 4 * (Length + 2 * costWords + ThreadsPerBlock / 32);
        int bytes = 2 * 8 + tiles * perTile + 4 * (ThreadsPerBlock / 32) + 4 * tiles;
        return (bytes + 7) / 8 * 8;
    }

    public void Dispose()
    {
        _targets?.Dispose();
        _states?.Dispose();
        _deviceTable?.Dispose();
        _history.Dispose();
        _halfTable.Dispose();
    }
}
