using Converter.Compute;
using Converter.Eval.Metrics;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Modules;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The head's error after quantizing (§5.2 step 5.6), on the reference rows: its logits with the reconstruction
/// against those with the original weight on the same states, and with the drift target's original stream, against the
/// original model's logits. Both sets are made and reduced to per-token sums (<see cref="IForwardPass.Compare"/>) where
/// the forward runs, so on a GPU no logits come to the host: they were 2.1 GB per chunk of an 8B's 2048-token rows,
/// three arrays at a time, and set the 250 × 2048 job's host peak (13.1 GiB while quantizing, 18.9 GiB after this
/// comparison on an H200, session 23).
/// </summary>
public static class HeadComparison
{
    /// <summary>
    /// Rows of <paramref name="tokens"/> whose logits one pass makes: half a forward chunk (CalibrationState.ChunkRows),
    /// as a pass holds two sets.
    /// </summary>
    public static int RowsPerPass(int tokens) => Math.Max(1, CalibrationState.ChunkRows(tokens) / 2);

    /// <summary>
    /// Adds each of <paramref name="rows"/> to <paramref name="diff"/> (and to <paramref name="againstOriginal"/> when
    /// <paramref name="original"/>, the original model's stream, is given), running on the states where they are held
    /// or else on <paramref name="through"/>'s pass.
    /// </summary>
    public static void Add(IForwardBackend through, LmHeadModule head, Matrix originalWeight, CalibrationState state, CalibrationState? original,
        IReadOnlyList<int> rows, ModuleDiff diff, ModuleDiff? againstOriginal)
    {
        if ((original is null) != (againstOriginal is null))
            throw new ArgumentException("the original stream and its diff come together", nameof(againstOriginal));
        var originalProjection = head.Projection.WithWeight(originalWeight);
        foreach (var chunk in rows.Chunk(RowsPerPass(state.Tokens)))
        {
            state.Run(chunk, through, (pass, x) =>
            {
                // The original model's logits take the slot the reference's had (Temporaries): a pass holds two sets
                // of logits, not three.
                var xOriginal = original is null ? null : pass.Load(original.States, chunk);
                var quantized = head.Logits(pass, x, head.Projection);
                using (pass.Temporaries())
                    AddRows(diff, pass.Compare(quantized, head.Logits(pass, x, originalProjection)), state.Tokens);
                if (xOriginal is not null)
                {
                    using (pass.Temporaries())
                        AddRows(againstOriginal!, pass.Compare(quantized, head.Logits(pass, xOriginal, originalProjection)), state.Tokens);
                }
            });
            HeapReuse.ReleaseFinishedStep();
        }
    }

    /// <summary>Adds each row's tokens' sums (stacked rows of <paramref name="tokens"/>) to <paramref name="diff"/>.</summary>
    private static void AddRows(ModuleDiff diff, TokenDiff[] sums, int tokens)
    {
        for (int r = 0; r < sums.Length / tokens; r++)
            diff.AddRow(sums.AsSpan(r * tokens, tokens));
    }
}
