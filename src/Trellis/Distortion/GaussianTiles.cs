namespace Converter.Trellis.Distortion;

/// <summary>Deterministic i.i.d. N(0,1) test data: the same seed gives the same tiles on every machine and run.</summary>
public static class GaussianTiles
{
    public static float[] Generate(int tiles, int seed)
    {
        var data = new float[tiles * Tiles.TileLayout.Length];
        Fill(data, seed);
        return data;
    }

    /// <summary>Box–Muller over System.Random(seed), whose seeded sequence .NET keeps stable across versions.</summary>
    public static void Fill(Span<float> data, int seed)
    {
        var rng = new Random(seed);
        for (int i = 0; i < data.Length; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            data[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < data.Length)
                data[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
    }
}
