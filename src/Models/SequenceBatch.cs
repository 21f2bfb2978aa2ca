using Converter.Compute;

namespace Converter.Models;

/// <summary>
/// What flows from module to module: <see cref="Rows"/> independent sequences of <see cref="Tokens"/> tokens each,
/// their token ids, and the current activations stacked row after row, (rows·tokens, width) — hidden states after
/// the embedding and the decoder blocks, logits after the head. Linear layers see all rows at once (one large
/// GEMM); attention runs within each row.
/// </summary>
public sealed class SequenceBatch
{
    private SequenceBatch(int rows, int tokens, int[] tokenIds, Matrix? values)
    {
        Rows = rows;
        Tokens = tokens;
        TokenIds = tokenIds;
        Values = values;
    }

    public int Rows { get; }

    public int Tokens { get; }

    /// <summary>rows·tokens ids, row after row.</summary>
    public int[] TokenIds { get; }

    /// <summary>The activations, or null before the embedding has run.</summary>
    public Matrix? Values { get; }

    /// <summary>A batch of equal-length rows of token ids (no activations yet).</summary>
    public static SequenceBatch FromTokens(IReadOnlyList<int[]> rows)
    {
        if (rows.Count == 0)
            throw new ArgumentException("a batch needs at least one row", nameof(rows));
        int tokens = rows[0].Length;
        if (tokens == 0)
            throw new ArgumentException("rows must not be empty", nameof(rows));
        var ids = new int[rows.Count * tokens];
        for (int r = 0; r < rows.Count; r++)
        {
            if (rows[r].Length != tokens)
                throw new ArgumentException($"row {r} has {rows[r].Length} tokens, row 0 has {tokens}; rows must have equal length", nameof(rows));
            rows[r].CopyTo(ids, r * tokens);
        }
        return new SequenceBatch(rows.Count, tokens, ids, null);
    }

    /// <summary>One row of token ids.</summary>
    public static SequenceBatch FromTokens(params int[] tokens) => FromTokens([tokens]);

    /// <summary>The same rows with new activations, which must have rows·tokens rows.</summary>
    public SequenceBatch WithValues(Matrix values)
    {
        if (values.Rows != Rows * Tokens)
            throw new ArgumentException($"activations {values.ShapeText} do not have {Rows}·{Tokens} rows", nameof(values));
        return new SequenceBatch(Rows, Tokens, TokenIds, values);
    }

    /// <summary>The activations; throws naming <paramref name="module"/> when there are none (embedding not run).</summary>
    public Matrix RequireValues(string module) =>
        Values ?? throw new InvalidOperationException($"module {module} needs hidden states, but the batch holds only token ids (run the embedding first)");

    /// <summary>Row <paramref name="row"/>'s (tokens, width) block of <paramref name="m"/>, which is stacked like this batch.</summary>
    public Span<float> RowOf(Matrix m, int row) => m.RowRange(row * Tokens, Tokens);
}
