using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;

namespace Converter.Cuda.Trellis;

/// <summary>
/// Unpacks stored trellis tiles (§2.6) on the GPU and looks their states up in a codebook table (§1): the decode
/// half of reconstruction (§4.3), in trellis-position order per tile.
/// </summary>
public sealed class CudaTrellisDecoder(CudaContext context)
{
    private const int Threads = 256;

    /// <summary>
    /// Decodes <c>packed.Length / (16·K)</c> tiles; writes each tile's 256 states and values in position order.
    /// </summary>
    public void Decode(ReadOnlySpan<short> packed, int bits, ReadOnlySpan<float> table, Span<ushort> states, Span<float> values)
    {
        int words = TrellisPacking.WordsPerTile(bits);
        int tiles = packed.Length / words;
        if (packed.Length != tiles * words || states.Length != tiles * TileLayout.Length || values.Length != states.Length || table.Length != CodebookTable.Size)
            throw new ArgumentException("packed, states, values or table do not match whole tiles");
        var module = CudaTileEncoder.LoadKernels(context, bits);
        using var p = context.Allocate<short>(packed.Length);
        using var t = context.Allocate<float>(table.Length);
        using var s = context.Allocate<ushort>(states.Length);
        using var v = context.Allocate<float>(values.Length);
        p.CopyFrom(packed);
        t.CopyFrom(table);
        long total = (long)tiles * TileLayout.Length;
        module.Launch("decode_tiles", (uint)((total + Threads - 1) / Threads), Threads, 0, [p.Pointer, tiles, t.Pointer, s.Pointer, v.Pointer]);
        s.CopyTo(states);
        v.CopyTo(values);
    }
}
