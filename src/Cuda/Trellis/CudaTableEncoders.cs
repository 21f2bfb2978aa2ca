using Converter.Trellis.Viterbi;

namespace Converter.Cuda.Trellis;

/// <summary>
/// One <see cref="CudaTileEncoder"/> per K on one GPU, its table swapped for each request (<see cref="CudaTileEncoder.UseTable"/>),
/// so a screen of thousands of tables compiles each K's kernel and allocates its history once.
/// </summary>
public sealed class CudaTableEncoders(CudaContext context) : ITableEncoders, IDisposable
{
    private readonly Dictionary<int, CudaTileEncoder> _encoders = new();

    public string Device => $"cuda:{context.Device.Ordinal}";

    public ITileEncoder For(ReadOnlyMemory<float> table, int bits)
    {
        if (_encoders.TryGetValue(bits, out var encoder))
            encoder.UseTable(table);
        else
            _encoders[bits] = encoder = new CudaTileEncoder(context, table, bits);
        return encoder;
    }

    public void Dispose()
    {
        foreach (var e in _encoders.Values)
            e.Dispose();
        _encoders.Clear();
    }
}
