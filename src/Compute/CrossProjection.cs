namespace Converter.Compute;

/// <summary>
/// The weights a projected drift cross sum multiplies each token's stream difference by: a linear group's members W_m
/// (rows_m × <see cref="Features"/>, row-major), stacked. The sum is then X̃ᵀ·(X − X̃)·Wᵀ (k × Σ rows_m) instead of
/// X̃ᵀ·(X − X̃) (k × k): the drift target only needs W·Cᵀ, so a group whose outputs are fewer than its inputs (a
/// down_proj: 8192 of 28672 in a 70B) keeps a sum that much smaller, and solves for that many right-hand sides.
/// </summary>
public sealed class CrossProjection
{
    private readonly int[] _offsets;

    /// <param name="weights">Each member's weight, rows × <paramref name="features"/> values, row-major; read, not changed.</param>
    /// <param name="features">The group's input width k.</param>
    public CrossProjection(IReadOnlyList<float[]> weights, int features)
    {
        if (weights.Count == 0)
            throw new ArgumentException("a projection needs at least one weight", nameof(weights));
        _offsets = new int[weights.Count + 1];
        for (int m = 0; m < weights.Count; m++)
        {
            if (weights[m].Length % features != 0 || weights[m].Length == 0)
                throw new ArgumentException($"weight {m} has {weights[m].Length} values, not whole rows of {features}", nameof(weights));
            _offsets[m + 1] = checked(_offsets[m] + weights[m].Length / features);
        }
        Weights = weights;
        Features = features;
    }

    /// <summary>The members' weights, in the group's order.</summary>
    public IReadOnlyList<float[]> Weights { get; }

    /// <summary>Input width k.</summary>
    public int Features { get; }

    /// <summary>Σ rows: the projected sum's columns.</summary>
    public int Columns => _offsets[^1];

    /// <summary>Rows of member <paramref name="member"/>.</summary>
    public int RowsOf(int member) => _offsets[member + 1] - _offsets[member];

    /// <summary>The first column of member <paramref name="member"/>'s block.</summary>
    public int OffsetOf(int member) => _offsets[member];

    /// <summary>
    /// Z (tokens × <see cref="Columns"/>, row-major) = D·Wᵀ of the stacked weights for D (tokens × k): each member's
    /// product by <paramref name="algebra"/>, into its block of columns.
    /// </summary>
    public void Project(IDenseAlgebra algebra, ReadOnlySpan<float> difference, int tokens, Span<float> z, Span<float> scratch)
    {
        int k = Features, columns = Columns;
        if (difference.Length != (long)tokens * k || z.Length < (long)tokens * columns)
            throw new ArgumentException($"expected {tokens}×{k} rows and room for {tokens}×{columns}");
        if (Weights.Count == 1)
        {
            algebra.MultiplyTransposed(difference, Weights[0], z[..(tokens * columns)], tokens, columns, k);
            return;
        }
        for (int m = 0; m < Weights.Count; m++)
        {
            int rows = RowsOf(m), offset = OffsetOf(m);
            var part = scratch[..(tokens * rows)];
            algebra.MultiplyTransposed(difference, Weights[m], part, tokens, rows, k);
            for (int t = 0; t < tokens; t++)
                part.Slice(t * rows, rows).CopyTo(z.Slice(t * columns + offset, rows));
        }
    }
}
