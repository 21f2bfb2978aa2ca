namespace Converter.Models;

/// <summary>
/// DeepSeek-V2/V3's multi-head latent attention as data (modeling_deepseek_v3.py's DeepseekV3Attention): queries come
/// from <c>q_proj</c> or, with a <see cref="QueryRank"/>, from <c>q_b_proj(q_a_layernorm(q_a_proj(x)))</c>; keys and
/// values from a latent of <see cref="KvRank"/> (<c>kv_a_proj_with_mqa</c> makes the latent and one shared rope key
/// of <see cref="RopeDim"/>, <c>kv_a_layernorm</c> normalizes the latent, <c>kv_b_proj</c> expands it into each
/// head's unrotated key part of <see cref="NopeDim"/> and its value of <see cref="ValueDim"/>). Each head's query and
/// key are [nope | rope]; only the rope part rotates.
/// </summary>
/// <param name="QueryRank">q_lora_rank, or null for a plain q_proj.</param>
/// <param name="Bias">attention_bias: q_a_proj, kv_a_proj_with_mqa and o_proj carry biases (q_proj, q_b_proj and kv_b_proj never do).</param>
public sealed record LatentAttentionSpec(int? QueryRank, int KvRank, int NopeDim, int RopeDim, int ValueDim, bool Bias)
{
    /// <summary>Width of each head's query and key: nope + rope.</summary>
    public int QkHeadDim => NopeDim + RopeDim;
}
