using Converter.Compute;

namespace Converter.Models.Tests.Compute;

public class BlockTransposeTests
{
    /// <summary>Against the one-value-at-a-time definition: sizes off the 64 grid, strides past the block, padding left alone.</summary>
    [TestCase(1, 1, 1, 1)]
    [TestCase(5, 3, 7, 9)]
    [TestCase(64, 64, 64, 64)]
    [TestCase(130, 70, 128, 200)]
    [TestCase(200, 129, 129, 256)]
    public void WritesTheTransposedBlockAndNothingElse(int rows, int cols, int srcStride, int dstStride)
    {
        srcStride = Math.Max(srcStride, cols);
        var rng = new Random(rows * 1000 + cols);
        var src = Enumerable.Range(0, rows * srcStride).Select(_ => (float)rng.NextDouble()).ToArray();
        var dst = Enumerable.Repeat(-7f, cols * dstStride).ToArray();
        var expected = (float[])dst.Clone();
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
                expected[c * dstStride + r] = src[r * srcStride + c];
        }

        BlockTranspose.Into(src, rows, cols, srcStride, dst, dstStride);

        Assert.That(dst, Is.EqualTo(expected));
    }

    [Test]
    public void RefusesABlockThatPassesTheArrays()
    {
        Assert.Throws<ArgumentException>(() => BlockTranspose.Into(new float[10], 4, 3, 3, new float[12], 4), "the source is 12 values");
        Assert.Throws<ArgumentException>(() => BlockTranspose.Into(new float[12], 4, 3, 3, new float[11], 4), "the destination needs 12");
        Assert.Throws<ArgumentException>(() => BlockTranspose.Into(new float[12], 4, 3, 2, new float[12], 4), "a row longer than its stride");
    }
}
