namespace Converter.Compute;

/// <summary>How a mixture-of-experts router turns its logits into expert scores.</summary>
public enum RouterScoring
{
    /// <summary>softmax over all experts (Mixtral, Qwen3-MoE): experts are chosen and weighted by probability.</summary>
    Softmax,

    /// <summary>
    /// σ(logit) per expert (GLM-4.5, DeepSeek-V3): experts are chosen by σ + the correction bias, weighted by σ.
    /// </summary>
    Sigmoid,
}

/// <summary>
/// A router's selection rule: <paramref name="TopK"/> of <paramref name="Experts"/> experts per token by
/// <paramref name="Scoring"/>; with <paramref name="NormalizeTopK"/> the chosen weights are divided by their sum
/// (plus <paramref name="NormEpsilon"/>), then every weight is multiplied by <paramref name="Scale"/>. With
/// <paramref name="Groups"/> &gt; 1 the experts form that many equal consecutive groups and only the
/// <paramref name="TopKGroups"/> best groups (by the sum of their two best choice scores) may be chosen from, as
/// DeepSeek-V3's and GLM-4.5's n_group / topk_group.
/// </summary>
public sealed record RouterSpec(int Experts, int TopK, RouterScoring Scoring, bool NormalizeTopK, float Scale = 1f, float NormEpsilon = 0f,
    int Groups = 1, int TopKGroups = 1)
{
    /// <summary>Whether the group limit removes any expert from the choice (all groups kept is no limit).</summary>
    public bool GroupLimited => Groups > 1 && TopKGroups < Groups;
}

/// <summary>
/// The top-k choice of one token's router (the reference the GPU kernel <c>route_topk</c> in forward.cu mirrors):
/// scores as <see cref="RouterSpec.Scoring"/> says, experts ranked by score plus any correction bias (ties to the
/// lower index, as a stable sort), weights as transformers' routers compute them in float32.
/// </summary>
public static class TopKRouter
{
    /// <summary>
    /// Writes the chosen experts in rank order to <paramref name="experts"/> and their weights to
    /// <paramref name="weights"/> (TopK each). An expert whose score is NaN is never chosen; a slot with nothing left to
    /// choose (a row of non-finite logits) gets expert −1.
    /// </summary>
    /// <param name="bias">Sigmoid routing's correction bias (one per expert, added for the choice only), or empty.</param>
    public static void Select(ReadOnlySpan<float> logits, RouterSpec router, ReadOnlySpan<float> bias, Span<int> experts, Span<float> weights)
    {
        int n = router.Experts;
        if (logits.Length != n || experts.Length != router.TopK || weights.Length != router.TopK || (!bias.IsEmpty && bias.Length != n))
            throw new ArgumentException($"routing {logits.Length} logits (bias {bias.Length}) to {experts.Length}/{weights.Length} slots for {n} experts");

        // Softmax as transformers' F.softmax(logits, dtype=float32): exp(l − max), divided by the sum taken in expert
        // order (Compute/Softmax.cs multiplies by the reciprocal; either is within an ulp of torch).
        Span<float> score = n <= 1024 ? stackalloc float[n] : new float[n];
        if (router.Scoring == RouterScoring.Softmax)
        {
            float max = float.NegativeInfinity;
            for (int e = 0; e < n; e++)
                max = MathF.Max(max, logits[e]);
            float sum = 0f;
            for (int e = 0; e < n; e++)
                sum += MathF.Exp(logits[e] - max);
            float inverse = 1f / sum;
            for (int e = 0; e < n; e++)
                score[e] = MathF.Exp(logits[e] - max) * inverse;
        }
        else
        {
            for (int e = 0; e < n; e++)
                score[e] = 1f / (1f + MathF.Exp(-logits[e]));
        }
        Span<float> choice = bias.IsEmpty && !router.GroupLimited ? score : n <= 1024 ? stackalloc float[n] : new float[n];
        if (!bias.IsEmpty)
        {
            for (int e = 0; e < n; e++)
                choice[e] = score[e] + bias[e];
        }
        else if (router.GroupLimited)
            score.CopyTo(choice);
        if (router.GroupLimited)
            MaskGroups(choice, router);

        // Rank j takes the best expert that comes after rank j − 1 in the order (choice descending, index
        // ascending), so no expert is taken twice and nothing needs marking (the GPU kernel keeps no per-expert state).
        experts.Fill(-1);
        weights.Clear();
        int previous = -1;
        float previousChoice = 0f;
        for (int j = 0; j < router.TopK; j++)
        {
            int best = -1;
            float bestChoice = 0f;
            for (int e = 0; e < n; e++)
            {
                float c = choice[e];
                if (float.IsNaN(c) || (previous >= 0 && !Before(previousChoice, previous, c, e)))
                    continue;
                if (best < 0 || Before(c, e, bestChoice, best))
                {
                    best = e;
                    bestChoice = c;
                }
            }
            if (best < 0)
                break;
            experts[j] = best;
            weights[j] = score[best];
            previous = best;
            previousChoice = bestChoice;
        }

        if (router.NormalizeTopK)
        {
            // routing_weights /= routing_weights.sum(-1): the sum in rank order.
            float sum = 0f;
            for (int j = 0; j < router.TopK; j++)
                sum += weights[j];
            sum += router.NormEpsilon;
            for (int j = 0; j < router.TopK; j++)
                weights[j] /= sum;
        }
        if (router.Scale != 1f)
        {
            for (int j = 0; j < router.TopK; j++)
                weights[j] *= router.Scale;
        }
    }

    /// <summary>
    /// DeepSeek-V3's group limit (DeepseekV3MoE.route_tokens_to_experts): each group scores the sum of its two best
    /// choices, the TopKGroups best groups are kept (ties to the lower group) and every other expert's choice becomes
    /// 0 (masked_fill with 0.0, not −∞: a kept expert whose biased score is negative can still lose to a masked one,
    /// exactly as in transformers).
    /// </summary>
    private static void MaskGroups(Span<float> choice, RouterSpec router)
    {
        int size = router.Experts / router.Groups;
        Span<float> groupScore = router.Groups <= 256 ? stackalloc float[router.Groups] : new float[router.Groups];
        for (int g = 0; g < router.Groups; g++)
        {
            float first = float.NegativeInfinity, second = float.NegativeInfinity;
            foreach (float c in choice.Slice(g * size, size))
            {
                if (c > first)
                {
                    second = first;
                    first = c;
                }
                else if (c > second)
                    second = c;
            }
            groupScore[g] = first + second;
        }
        for (int g = 0; g < router.Groups; g++)
        {
            // Group g is kept when fewer than TopKGroups groups rank before it.
            int better = 0;
            for (int o = 0; o < router.Groups; o++)
            {
                if (o != g && Before(groupScore[o], o, groupScore[g], g))
                    better++;
            }
            if (better >= router.TopKGroups)
                choice.Slice(g * size, size).Clear();
        }
    }

    /// <summary>Whether (a, ia) ranks before (b, ib): higher choice first, the lower index on a tie.</summary>
    private static bool Before(float a, int ia, float b, int ib) => a > b || (a == b && ia < ib);
}
