namespace Converter.Regularize.Quantization;

/// <summary>A contiguous range of output columns of the padded weight: [<see cref="Start"/>, <see cref="Start"/> + <see cref="Count"/>).</summary>
public readonly record struct ColumnRange(int Start, int Count);

/// <summary>
/// How LDLQ's output columns are shared between devices. LDLQ is independent per output column (each column's
/// target, feedback and error touch only that column; the encoder treats every tile alone), so a weight's columns can
/// run on several devices at once and give the columns one device would: exllamav3 splits a linear's tiles between
/// GPUs by measured speed the same way.
/// </summary>
public static class ColumnSplit
{
    /// <summary>LDLQ's padded widths are multiples of 128 (§3.1), and so is every share: whole 128-column spans.</summary>
    public const int Granule = LinearQuantizer.Padding;

    /// <summary>
    /// Contiguous shares of <paramref name="n"/> columns, in device order, proportional to <paramref name="speeds"/>
    /// in whole <see cref="Granule"/>s (largest remainders get the spare granules; ties to the lower device). A
    /// device may get none when there are fewer granules than devices or it is much slower.
    /// </summary>
    public static ColumnRange[] Ranges(int n, IReadOnlyList<double> speeds)
    {
        if (n <= 0 || n % Granule != 0)
            throw new ArgumentException($"columns must be a positive multiple of {Granule}, got {n}", nameof(n));
        if (speeds.Count == 0 || speeds.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new ArgumentException("every device needs a positive, finite speed", nameof(speeds));
        int granules = n / Granule;
        double total = speeds.Sum();
        var ideal = speeds.Select(s => granules * s / total).ToArray();
        var count = ideal.Select(v => (int)Math.Floor(v)).ToArray();
        int spare = granules - count.Sum();
        foreach (int d in Enumerable.Range(0, speeds.Count).OrderByDescending(d => ideal[d] - count[d]).ThenBy(d => d).Take(spare))
            count[d]++;
        var ranges = new ColumnRange[speeds.Count];
        int start = 0;
        for (int d = 0; d < speeds.Count; d++)
        {
            ranges[d] = new ColumnRange(start * Granule, count[d] * Granule);
            start += count[d];
        }
        return ranges;
    }

    /// <summary>Columns <paramref name="range"/> of the row-major (k, n) <paramref name="matrix"/>, as a (k, range.Count) matrix.</summary>
    public static float[] Columns(ReadOnlySpan<float> matrix, int k, int n, ColumnRange range)
    {
        var part = new float[(long)k * range.Count];
        for (int r = 0; r < k; r++)
            matrix.Slice(r * n + range.Start, range.Count).CopyTo(part.AsSpan(r * range.Count, range.Count));
        return part;
    }

    /// <summary>Writes a (k, range.Count) part back into columns <paramref name="range"/> of the row-major (k, n) <paramref name="matrix"/>.</summary>
    public static void PutColumns(ReadOnlySpan<float> part, int k, int n, ColumnRange range, Span<float> matrix)
    {
        for (int r = 0; r < k; r++)
            part.Slice(r * range.Count, range.Count).CopyTo(matrix.Slice(r * n + range.Start, range.Count));
    }

    /// <summary>The tile states of columns <paramref name="range"/> of the whole weight's, laid out as a (k, range.Count) problem's (<see cref="PutTileStates"/> reversed).</summary>
    public static ushort[] TileStates(ReadOnlySpan<ushort> states, int k, int n, ColumnRange range)
    {
        const int side = Trellis.Tiles.TileLayout.Side, length = Trellis.Tiles.TileLayout.Length;
        int tilesN = n / side, partTilesN = range.Count / side, offset = range.Start / side;
        var part = new ushort[(long)k * range.Count];
        for (int tk = 0; tk < k / side; tk++)
            states.Slice((tk * tilesN + offset) * length, partTilesN * length).CopyTo(part.AsSpan(tk * partTilesN * length, partTilesN * length));
        return part;
    }

    /// <summary>
    /// Writes a part's tile states (its (k/16, range.Count/16) tiles in row-major tile order, 256 each, as
    /// <see cref="Ldlq.Quantize"/> lays them out) into the whole weight's tile order.
    /// </summary>
    public static void PutTileStates(ReadOnlySpan<ushort> part, int k, int n, ColumnRange range, Span<ushort> states)
    {
        const int side = Trellis.Tiles.TileLayout.Side, length = Trellis.Tiles.TileLayout.Length;
        int tilesN = n / side, partTilesN = range.Count / side, offset = range.Start / side;
        for (int tk = 0; tk < k / side; tk++)
            part.Slice(tk * partTilesN * length, partTilesN * length).CopyTo(states.Slice((tk * tilesN + offset) * length, partTilesN * length));
    }
}
