using System.Runtime.Intrinsics;
using Converter.Compute;
using Converter.Compute.Gemm;

namespace Converter.Models.Tests.Compute;

public class MatMulTests
{
    // Odd sizes exercise every remainder: rows and columns not multiples of the 4×4 block or the 64×64 tile, and
    // a shared dimension with a scalar tail after the 16- (or 8-) wide vector loop and more than one 1024 slice.
    private static readonly int[][] Shapes =
    [
        [1, 1, 1], [3, 5, 7], [4, 4, 16], [5, 9, 17], [17, 13, 31], [64, 64, 64], [65, 67, 129],
        [70, 130, 1030], [131, 3, 2051], [2, 200, 15], [0, 5, 3], [5, 0, 3], [5, 3, 0],
    ];

    public static IEnumerable<TestCaseData> Cases()
    {
        // Every kernel this machine can run natively, plus the portable one that runs anywhere.
        var paths = new List<GemmPath> { GemmPath.Portable };
        if (Vector256.IsHardwareAccelerated)
            paths.Add(GemmPath.Vector256);
        if (Vector512.IsHardwareAccelerated)
            paths.Add(GemmPath.Vector512);
        foreach (var path in paths)
        {
            foreach (var s in Shapes)
                yield return new TestCaseData(path.ToString(), s[0], s[1], s[2]);
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnOddSizes(string kernel, int m, int n, int k)
    {
        var path = Enum.Parse<GemmPath>(kernel);
        var rng = new Random(m * 1000003 + n * 1009 + k);
        var x = Random(rng, m * k);
        var w = Random(rng, n * k);
        var bias = Random(rng, n);
        foreach (var b in new[] { Array.Empty<float>(), bias })
        {
            var expected = new float[m * n];
            var actual = new float[m * n];
            MatMul.Reference(x, w, expected, m, n, k, b);
            MatMul.MultiplyTransposed(path, x, w, actual, m, n, k, b);
            // Float32 accumulation in a different order than the double reference: error grows like √k·ε·|x||w|.
            var tol = 1e-5f * MathF.Sqrt(k + 1) * 4;
            for (int i = 0; i < expected.Length; i++)
                Assert.That(actual[i], Is.EqualTo(expected[i]).Within(tol), $"({m},{n},{k}) bias={b.Length > 0} at {i}");
        }
    }

    [Test]
    public void RejectsMismatchedShapes()
    {
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyTransposed(new float[6], new float[6], new float[4], 2, 2, 3, new float[3]));
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyTransposed(new float[5], new float[6], new float[4], 2, 2, 3));
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyTransposed(new Matrix(2, 3), new Matrix(2, 4)));
    }

    internal static float[] Random(Random rng, int length)
    {
        var a = new float[length];
        for (int i = 0; i < a.Length; i++)
            a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }
}
