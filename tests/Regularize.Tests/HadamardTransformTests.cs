using System.Numerics;
using Converter.Regularize.Hadamard;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

public class HadamardTransformTests
{
    private static float[] Random(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    [Test]
    public void MatchesTheSylvesterDefinition()
    {
        // §4.4: H[i][j] = (−1)^popcount(i & j), normalized by 1/√128.
        var x = Random(128, 1);
        var y = (float[])x.Clone();
        HadamardTransform.Transform128(y);
        for (int i = 0; i < 128; i++)
        {
            double sum = 0;
            for (int j = 0; j < 128; j++)
                sum += (BitOperations.PopCount((uint)(i & j)) % 2 == 0 ? 1 : -1) * x[j];
            Assert.That(y[i], Is.EqualTo(sum / Math.Sqrt(128)).Within(1e-5));
        }
    }

    [Test]
    public void IsItsOwnInverse()
    {
        var x = Random(256 * 384, 2);
        var y = (float[])x.Clone();
        HadamardTransform.LeftMultiply(y, 256, 384);
        HadamardTransform.LeftMultiply(y, 256, 384);
        Assert.That(y, Is.EqualTo(x).Within(1e-5f));
        HadamardTransform.RightMultiply(y, 256, 384);
        Assert.That(y, Is.Not.EqualTo(x).Within(1e-5f));
        HadamardTransform.RightMultiply(y, 256, 384);
        Assert.That(y, Is.EqualTo(x).Within(1e-5f));
    }

    [Test]
    public void LeftMultiplyRotatesColumnsAndRightMultiplyRotatesRows()
    {
        const int rows = 128, cols = 256;
        var w = Random(rows * cols, 3);
        var left = (float[])w.Clone();
        HadamardTransform.LeftMultiply(left, rows, cols);
        var column = new float[rows];
        for (int r = 0; r < rows; r++)
            column[r] = w[r * cols + 5];
        HadamardTransform.Transform128(column);
        for (int r = 0; r < rows; r++)
            Assert.That(left[r * cols + 5], Is.EqualTo(column[r]).Within(1e-5));

        var right = (float[])w.Clone();
        HadamardTransform.RightMultiply(right, rows, cols);
        var row = w.AsSpan(7 * cols + 128, 128).ToArray();
        HadamardTransform.Transform128(row);
        Assert.That(right.AsSpan(7 * cols + 128, 128).ToArray(), Is.EqualTo(row).Within(1e-6f));
    }

    /// <summary>
    /// Both multiplies apply the scalar 128-point butterfly's operations to every element in its order, however they are
    /// vectorized: the rotated weights, and with them the stored ones, do not depend on the machine's SIMD width.
    /// </summary>
    [Test]
    public void BothMultipliesEqualTheScalarButterflyToTheBit()
    {
        const int rows = 256, cols = 384;
        var w = Random(rows * cols, 11);
        var right = (float[])w.Clone();
        HadamardTransform.RightMultiply(right, rows, cols);
        var left = (float[])w.Clone();
        HadamardTransform.LeftMultiply(left, rows, cols);
        var block = new float[128];
        for (int r = 0; r < rows; r++)
        {
            for (int c0 = 0; c0 < cols; c0 += 128)
            {
                w.AsSpan(r * cols + c0, 128).CopyTo(block);
                HadamardTransform.Transform128(block);
                Assert.That(right.AsSpan(r * cols + c0, 128).ToArray(), Is.EqualTo(block), $"row {r}, columns {c0}..");
            }
        }
        for (int c = 0; c < cols; c += 37)
        {
            for (int r0 = 0; r0 < rows; r0 += 128)
            {
                for (int i = 0; i < 128; i++)
                    block[i] = w[(r0 + i) * cols + c];
                HadamardTransform.Transform128(block);
                for (int i = 0; i < 128; i++)
                    Assert.That(left[(r0 + i) * cols + c], Is.EqualTo(block[i]), $"column {c}, row {r0 + i}");
            }
        }
    }

    [Test]
    public void RejectsDimensionsNotDivisibleBy128() =>
        Assert.Throws<ArgumentException>(() => HadamardTransform.LeftMultiply(new float[100 * 128], 100, 128));
}
