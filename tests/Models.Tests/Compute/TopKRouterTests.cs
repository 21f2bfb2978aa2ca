using Converter.Compute;

namespace Converter.Models.Tests.Compute;

/// <summary>The routers of Mixtral, Qwen3-MoE and GLM-4.5/DeepSeek-V3 on hand-computed logits.</summary>
public class TopKRouterTests
{
    private static (int[] Experts, float[] Weights) Route(float[] logits, RouterSpec router, float[]? bias = null)
    {
        var experts = new int[router.TopK];
        var weights = new float[router.TopK];
        TopKRouter.Select(logits, router, bias ?? [], experts, weights);
        return (experts, weights);
    }

    private static double[] SoftmaxOf(float[] logits)
    {
        double max = logits.Max();
        var e = logits.Select(l => Math.Exp(l - max)).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Test]
    public void MixtralTakesTheTwoMostProbableAndRenormalizes()
    {
        float[] logits = [0.5f, 2f, -1f, 1.25f];
        var (experts, weights) = Route(logits, new RouterSpec(4, 2, RouterScoring.Softmax, NormalizeTopK: true));
        Assert.That(experts, Is.EqualTo(new[] { 1, 3 }));
        var p = SoftmaxOf(logits);
        Assert.That(weights[0], Is.EqualTo(p[1] / (p[1] + p[3])).Within(1e-6));
        Assert.That(weights[1], Is.EqualTo(p[3] / (p[1] + p[3])).Within(1e-6));
    }

    [Test]
    public void WithoutNormalizationTheWeightsAreTheProbabilities()
    {
        // Qwen3-MoE with norm_topk_prob = false (its default).
        float[] logits = [3f, -2f, 0f, 1f, 2.5f];
        var (experts, weights) = Route(logits, new RouterSpec(5, 3, RouterScoring.Softmax, NormalizeTopK: false));
        Assert.That(experts, Is.EqualTo(new[] { 0, 4, 3 }));
        var p = SoftmaxOf(logits);
        Assert.That(weights, Is.EqualTo(new[] { p[0], p[4], p[3] }).Within(1e-6));
    }

    [Test]
    public void TiesGoToTheLowerIndex()
    {
        var (experts, _) = Route([1f, 2f, 2f, 2f], new RouterSpec(4, 2, RouterScoring.Softmax, NormalizeTopK: true));
        Assert.That(experts, Is.EqualTo(new[] { 1, 2 }));
    }

    [Test]
    public void NonFiniteLogitsChooseNothing()
    {
        var (experts, _) = Route([float.NaN, float.NaN, float.NaN], new RouterSpec(3, 2, RouterScoring.Softmax, NormalizeTopK: true));
        Assert.That(experts, Is.EqualTo(new[] { -1, -1 }));
    }

    [Test]
    public void SigmoidRoutingChoosesByBiasedScoreAndWeighsByScore()
    {
        // GLM-4.5: choice = σ(l) + e_score_correction_bias, weights = σ(l) of the chosen, renormalized (+1e-20), × 2.5.
        float[] logits = [1f, 0.9f, -3f, 0f];
        float[] bias = [0f, 0.1f, 2f, 0f];
        var (experts, weights) = Route(logits, new RouterSpec(4, 2, RouterScoring.Sigmoid, NormalizeTopK: true, Scale: 2.5f, NormEpsilon: 1e-20f), bias);
        Assert.That(experts, Is.EqualTo(new[] { 2, 1 }));
        double s2 = 1 / (1 + Math.Exp(3)), s1 = 1 / (1 + Math.Exp(-0.9));
        Assert.That(weights[0], Is.EqualTo(2.5 * s2 / (s2 + s1)).Within(1e-6));
        Assert.That(weights[1], Is.EqualTo(2.5 * s1 / (s2 + s1)).Within(1e-6));
    }

    [Test]
    public void EveryExpertCanBeChosenWhenTopKIsAll()
    {
        var (experts, weights) = Route([0.1f, 0.3f, 0.2f], new RouterSpec(3, 3, RouterScoring.Softmax, NormalizeTopK: true));
        Assert.That(experts, Is.EqualTo(new[] { 1, 2, 0 }));
        Assert.That(weights.Sum(), Is.EqualTo(1f).Within(1e-6));
    }

    [Test]
    public void GroupLimitKeepsTheGroupsWithTheBestTwoScores()
    {
        // DeepSeek-V3: 4 groups of 2; group scores (sum of the two best σ) 1.0, 1.46, 1.38, 0.54 keep groups 1 and 2,
        // so expert 0 (the best single score, 0.95) is out and the top 3 come from experts 2..5.
        float[] logits = [3f, -3f, 1f, 1f, 2f, 0f, -1f, -1f];
        var router = new RouterSpec(8, 3, RouterScoring.Sigmoid, NormalizeTopK: false, Groups: 4, TopKGroups: 2);
        var (experts, weights) = Route(logits, router);
        Assert.That(experts, Is.EqualTo(new[] { 4, 2, 3 }));
        Assert.That(weights, Is.EqualTo(new[] { 1 / (1 + Math.Exp(-2)), 1 / (1 + Math.Exp(-1)), 1 / (1 + Math.Exp(-1)) }).Within(1e-6));
        Assert.That(Route(logits, router with { TopKGroups = 4 }).Experts, Is.EqualTo(new[] { 0, 4, 2 }), "all groups kept: no limit");
    }

    [Test]
    public void MaskedExpertsScoreZeroNotMinusInfinity()
    {
        // transformers masks the dropped groups with 0.0: when every kept choice is negative (a strong negative
        // correction bias), a dropped expert's 0 still ranks first, and its weight is its σ.
        float[] bias = [-0.9f, -0.95f, -1.1f, -1.2f];
        var (experts, weights) = Route([0f, 0f, 0f, 0f], new RouterSpec(4, 1, RouterScoring.Sigmoid, NormalizeTopK: false, Groups: 2, TopKGroups: 1), bias);
        Assert.That(experts, Is.EqualTo(new[] { 2 }));
        Assert.That(weights[0], Is.EqualTo(0.5f));
    }
}
