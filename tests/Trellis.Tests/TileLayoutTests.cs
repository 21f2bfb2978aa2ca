using Converter.Trellis.Tiles;
using NUnit.Framework;

namespace Converter.Trellis.Tests;

public class TileLayoutTests
{
    [Test]
    public void FirstLaneGroupMatchesTheFormat()
    {
        // docs/exl3-format.md §2.5: positions 0..31 as r·16 + c.
        int[] expected = [0, 16, 128, 144, 8, 24, 136, 152, 32, 48, 160, 176, 40, 56, 168, 184,
            64, 80, 192, 208, 72, 88, 200, 216, 96, 112, 224, 240, 104, 120, 232, 248];
        for (int t = 0; t < 32; t++)
        {
            Assert.That(TileLayout.IndexOfPosition(t), Is.EqualTo(expected[t]), $"position {t}");
            Assert.That(TileLayout.IndexOfPosition(t + 32), Is.EqualTo(expected[t] + 1), $"position {t + 32}");
        }
    }

    [Test]
    public void PermutationIsABijectionAndRoundTrips()
    {
        var seen = new HashSet<int>();
        for (int t = 0; t < TileLayout.Length; t++)
        {
            Assert.That(seen.Add(TileLayout.IndexOfPosition(t)), Is.True);
            Assert.That(TileLayout.PositionOfIndex(TileLayout.IndexOfPosition(t)), Is.EqualTo(t));
        }
        var rowMajor = Enumerable.Range(0, 256).Select(i => (float)i).ToArray();
        var positions = new float[256];
        var back = new float[256];
        TileLayout.ToPositionOrder(rowMajor, positions);
        TileLayout.ToRowMajor(positions, back);
        Assert.That(back, Is.EqualTo(rowMajor));
        Assert.That(positions[1], Is.EqualTo(16f));
    }

    [TestCase(0)]
    [TestCase(9)]
    public void RejectsBitsOutsideOneToEight(int bits) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => TileLayout.CheckBits(bits));
}
