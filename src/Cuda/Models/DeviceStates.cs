using Converter.Models.Forward;

namespace Converter.Cuda.Models;

/// <summary>
/// Calibration states in one GPU allocation, row after row ((tokens, width) each), made by
/// <see cref="CudaForwardBackend.HoldStates"/>: 8.4 GB for 250 rows × 2048 tokens of a 4096-wide model. Row copies
/// to and from the host go through the backend's gate, like every other use of the device.
/// </summary>
public sealed class DeviceStates : ResidentStates
{
    private readonly DeviceBuffer<float> _buffer;
    private readonly CudaForwardBackend _owner;

    internal DeviceStates(CudaForwardBackend owner, DeviceBuffer<float> buffer, int rows, int tokens, int width)
    {
        _owner = owner;
        _buffer = buffer;
        Rows = rows;
        Tokens = tokens;
        Width = width;
    }

    public override int Rows { get; }

    public override int Tokens { get; }

    public override int Width { get; }

    public override string Device => _owner.Device;

    internal CudaForwardBackend Owner => _owner;

    /// <summary>Values per row.</summary>
    internal long RowValues => (long)Tokens * Width;

    /// <summary>The device address of row <paramref name="row"/>'s first value.</summary>
    internal ulong RowPointer(int row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Rows);
        return _buffer.Pointer + (ulong)(row * RowValues * sizeof(float));
    }

    public override void ReadRow(int row, Span<float> destination)
    {
        CheckRow(row, destination.Length);
        lock (_owner.Gate)
            _buffer.CopyTo(destination, row * RowValues);
    }

    public override void WriteRow(int row, ReadOnlySpan<float> source)
    {
        CheckRow(row, source.Length);
        lock (_owner.Gate)
            _buffer.CopyFrom(source, row * RowValues);
    }

    private void CheckRow(int row, int length)
    {
        if (row < 0 || row >= Rows)
            throw new ArgumentOutOfRangeException(nameof(row), $"row {row} of {Rows}");
        if (length != RowValues)
            throw new ArgumentException($"a row holds {Tokens}·{Width} values, not {length}");
    }

    public override void Dispose()
    {
        lock (_owner.Gate)
            _buffer.Dispose();
    }
}
