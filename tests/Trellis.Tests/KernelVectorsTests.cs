using Converter.Formats.Safetensors;
using Converter.TestSupport;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;
using NUnit.Framework;

namespace Converter.Trellis.Tests;

/// <summary>
/// Ground truth made by exllamav3's own CUDA kernels (tests/data/reference/exl3-kernel-vectors.safetensors): a random
/// 256×384 matrix quantized tile by tile for each codebook at K = 2, 3, 4.
/// </summary>
public class KernelVectorsTests
{
    private const int TilesK = 16, TilesN = 24;
    private SafetensorsFile _file = null!;

    [OneTimeSetUp]
    public void Open() => _file = SafetensorsFile.Open(Path.Combine(RepoPaths.Reference, "exl3-kernel-vectors.safetensors"));

    [OneTimeTearDown]
    public void Close() => _file.Dispose();

    public static IEnumerable<TestCaseData> Cases() =>
        from cb in new[] { "3inst", "mcg", "mul1" }
        from k in new[] { 2, 3, 4 }
        select new TestCaseData(cb, k);

    [TestCaseSource(nameof(Cases))]
    public void UnpackingTheTrellisGivesTheKernelStates(string codebook, int bits)
    {
        var trellis = _file.ReadRaw<short>($"{codebook}.k{bits}.trellis");
        var states = _file.ReadRaw<short>($"{codebook}.k{bits}.states");
        int words = TrellisPacking.WordsPerTile(bits);
        Assert.That(_file.Info($"{codebook}.k{bits}.trellis").Shape, Is.EqualTo(new long[] { TilesK, TilesN, words }));
        var unpacked = new ushort[TileLayout.Length];
        for (int tile = 0; tile < TilesK * TilesN; tile++)
        {
            TrellisPacking.Unpack(trellis.AsSpan(tile * words, words), bits, unpacked);
            var expected = states.AsSpan(tile * 256, 256).ToArray().Select(s => (ushort)s).ToArray();
            Assert.That(unpacked, Is.EqualTo(expected), $"tile {tile}");
            Assert.That(TrellisPacking.IsTailBiting(expected, bits), Is.True, $"kernel tile {tile} is tail-biting");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void PackingTheKernelStatesGivesTheSameBits(string codebook, int bits)
    {
        var trellis = _file.ReadRaw<short>($"{codebook}.k{bits}.trellis");
        var states = _file.ReadRaw<short>($"{codebook}.k{bits}.states");
        int words = TrellisPacking.WordsPerTile(bits);
        var packed = new short[words];
        var tileStates = new ushort[TileLayout.Length];
        for (int tile = 0; tile < TilesK * TilesN; tile++)
        {
            for (int t = 0; t < 256; t++)
                tileStates[t] = (ushort)states[tile * 256 + t];
            TrellisPacking.Pack(tileStates, bits, packed);
            Assert.That(packed, Is.EqualTo(trellis.AsSpan(tile * words, words).ToArray()), $"tile {tile}");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void DecodingTheTrellisGivesTheKernelValuesExactly(string codebook, int bits)
    {
        var trellis = _file.ReadRaw<short>($"{codebook}.k{bits}.trellis");
        var what = _file.ReadFloat32($"{codebook}.k{bits}.what");
        var table = CodebookTable.Build(CodebookSpec.Parse(codebook));
        var decoded = new float[TilesK * 16 * TilesN * 16];
        TrellisDecoder.Decode(trellis, TilesK, TilesN, bits, table.Values, decoded);
        Assert.That(decoded, Is.EqualTo(what));
    }
}
