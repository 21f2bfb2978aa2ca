using Converter.Trellis.Tiles;
using NUnit.Framework;

namespace Converter.Trellis.Tests;

public class TrellisPackingTests
{
    [Test]
    public void PackUnpackRoundTripsForEveryK([Range(1, 8)] int bits)
    {
        var rng = new Random(bits);
        var packed = new short[TrellisPacking.WordsPerTile(bits)];
        var unpacked = new ushort[256];
        for (int trial = 0; trial < 20; trial++)
        {
            var states = TrellisSequences.RandomTailBiting(bits, rng);
            Assert.That(TrellisPacking.IsTailBiting(states, bits), Is.True);
            TrellisPacking.Pack(states, bits, packed);
            TrellisPacking.Unpack(packed, bits, unpacked);
            Assert.That(unpacked, Is.EqualTo(states));
        }
    }

    [Test]
    public void PackedWordsAreHalfSwappedMsbFirstStream()
    {
        // K = 8: v_t = t, so B is the bytes 0,1,2,3,…; P[0] = 0x0001, P[1] = 0x0203, stored swapped (§2.6).
        var states = new ushort[256];
        for (int t = 0; t < 256; t++)
            states[t] = (ushort)((((t + 255) % 256) << 8) | t);
        var packed = new short[TrellisPacking.WordsPerTile(8)];
        TrellisPacking.Pack(states, 8, packed);
        Assert.That((ushort)packed[0], Is.EqualTo((ushort)0x0203));
        Assert.That((ushort)packed[1], Is.EqualTo((ushort)0x0001));
        Assert.That((ushort)packed[2], Is.EqualTo((ushort)0x0607));
    }

    [TestCase(1, 16)]
    [TestCase(2, 32)]
    [TestCase(3, 48)]
    [TestCase(4, 64)]
    [TestCase(8, 128)]
    public void WordsPerTileIs16K(int bits, int words) =>
        Assert.That(TrellisPacking.WordsPerTile(bits), Is.EqualTo(words));

    [Test]
    public void DetectsABrokenCycle()
    {
        var states = TrellisSequences.RandomTailBiting(4, new Random(1));
        states[0] ^= 0x8000;
        Assert.That(TrellisPacking.IsTailBiting(states, 4), Is.False);
    }
}
