using Converter.Compute;
using Converter.Formats.HuggingFace;
using Converter.TestSupport;

namespace Converter.Models.Tests.Architectures;

/// <summary>How each architecture's declaration reads config.json, from the test models and small hand-written configs.</summary>
public class ArchitectureConfigTests
{
    private const string Base = """
        "architectures": ["LlamaForCausalLM"], "hidden_size": 512, "intermediate_size": 1024,
        "num_hidden_layers": 2, "num_attention_heads": 8, "vocab_size": 1000, "max_position_embeddings": 2048
        """;

    private static TransformerSpec Describe(TempDirectory dir, string body)
    {
        File.WriteAllText(dir.File("config.json"), "{" + body + "}");
        return TransformerSpec.From(ModelConfig.Load(dir.Path));
    }

    private static ModelConfigException Fails(string body)
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<ModelConfigException>(() => Describe(dir, body))!;
        Assert.That(e.Message, Does.Contain("config.json"));
        return e;
    }

    private static TransformerSpec Of(string testModel) => TransformerSpec.From(ModelConfig.Load(
        testModel == "tiny-llama" ? RepoPaths.SampleModel : RepoPaths.TestModel(testModel)));

    [Test]
    public void TinyLlama()
    {
        var s = Of("tiny-llama");
        Assert.That(s.ArchitectureName, Is.EqualTo("LlamaForCausalLM"));
        Assert.That((s.NormEps, s.QkvBias, s.OutputBias, s.MlpBias, s.QkNorm, s.TiedEmbeddings), Is.EqualTo((1e-5f, false, false, false, QkNormPlacement.None, false)));
        Assert.That(s.LayerAttention, Has.All.EqualTo(new LayerAttention(null, new RopeConfig(RopeType.Default, 10000.0))));
        Assert.That((s.RotaryDims, s.Norm, s.BlockNorms, s.Activation), Is.EqualTo((64, NormKind.Rms, BlockNorms.PreNorm, MlpActivation.Silu)));
    }

    [Test]
    public void RandLlama31HasLlama3Rope()
    {
        var rope = Of("rand-llama31").LayerAttention[0].Rope!;
        Assert.That((rope.Type, rope.Theta), Is.EqualTo((RopeType.Llama3, 500000.0)));
        Assert.That(rope.Llama3, Is.EqualTo(new Llama3RopeScaling(32.0, 1.0, 4.0, 8192)));
    }

    [Test]
    public void RandQwen3HasPerHeadQkNorms()
    {
        var s = Of("rand-qwen3");
        Assert.That((s.QkNorm, s.QkvBias, s.TiedEmbeddings, s.NormEps), Is.EqualTo((QkNormPlacement.PerHead, false, true, 1e-6f)));
        Assert.That(s.LayerAttention[0].Rope, Is.EqualTo(new RopeConfig(RopeType.Default, 1e6)));
    }

    [Test]
    public void DefaultsWhenOptionalKeysAreAbsent()
    {
        using var dir = new TempDirectory();
        var s = Describe(dir, Base);
        Assert.That((s.QkvBias, s.NormEps, s.LayerAttention[0]), Is.EqualTo((false, 1e-6f, new LayerAttention(null, new RopeConfig(RopeType.Default, 10000.0)))));
    }

    [TestCase("rope_type")]
    [TestCase("type")]
    public void OldTopLevelRopeThetaAndRopeScaling(string typeKey)
    {
        using var dir = new TempDirectory();
        var s = Describe(dir, Base + $$"""
            , "rope_theta": 500000, "rope_scaling": {"{{typeKey}}": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
            """);
        Assert.That(s.LayerAttention[0].Rope, Is.EqualTo(new RopeConfig(RopeType.Llama3, 500000.0, new Llama3RopeScaling(8.0, 1.0, 4.0, 8192))));
    }

    [Test]
    public void OldFormWithNullScalingIsDefaultRope()
    {
        using var dir = new TempDirectory();
        Assert.That(Describe(dir, Base + """, "rope_theta": 1000000.0, "rope_scaling": null""").LayerAttention[1].Rope,
            Is.EqualTo(new RopeConfig(RopeType.Default, 1e6)));
    }

    [Test]
    public void RopeParametersFormWinsOverTopLevelKeys()
    {
        using var dir = new TempDirectory();
        var s = Describe(dir, Base + """
            , "rope_theta": 1.0, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
              "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
            """);
        Assert.That(s.LayerAttention[0].Rope, Is.EqualTo(new RopeConfig(RopeType.Llama3, 500000.0, new Llama3RopeScaling(32.0, 1.0, 4.0, 8192))));
    }

    [Test]
    public void AttentionBiasPerArchitecture()
    {
        using var dir = new TempDirectory();
        var llama = Describe(dir, Base + """, "attention_bias": true, "mlp_bias": true""");
        Assert.That((llama.QkvBias, llama.OutputBias, llama.MlpBias), Is.EqualTo((true, true, true)));

        var mistral = Describe(dir, Base.Replace("LlamaForCausalLM", "MistralForCausalLM") + """, "attention_bias": true, "sliding_window": 4096""");
        Assert.That((mistral.QkvBias, mistral.LayerAttention[1].Window), Is.EqualTo((false, (int?)4096)));

        var qwen2 = Describe(dir, Base.Replace("LlamaForCausalLM", "Qwen2ForCausalLM"));
        Assert.That((qwen2.QkvBias, qwen2.OutputBias), Is.EqualTo((true, false)));

        var qwen3 = Describe(dir, Base.Replace("LlamaForCausalLM", "Qwen3ForCausalLM") + """, "attention_bias": true""");
        Assert.That((qwen3.QkvBias, qwen3.OutputBias, qwen3.QkNorm), Is.EqualTo((true, true, QkNormPlacement.PerHead)));
    }

    [Test]
    public void ModelTypeIsTheFallbackForMissingArchitectures()
    {
        using var dir = new TempDirectory();
        var s = Describe(dir, Base.Replace("\"architectures\": [\"LlamaForCausalLM\"],", "\"model_type\": \"qwen2\","));
        Assert.That(s.ArchitectureName, Is.EqualTo("Qwen2ForCausalLM"));
    }

    [Test]
    public void UnsupportedArchitecture() =>
        Assert.That(Fails(Base.Replace("LlamaForCausalLM", "GPT2LMHeadModel")).Message,
            Does.Contain("unsupported architecture GPT2LMHeadModel").And.Contain("LlamaForCausalLM"));

    [TestCase("rope_parameters", "ntk")]
    [TestCase("rope_parameters", "linear")]
    [TestCase("rope_scaling", "dynamic")]
    public void UnsupportedRopeType(string key, string type) =>
        Assert.That(Fails(Base + $$""", "{{key}}": {"rope_type": "{{type}}", "factor": 4.0}""").Message,
            Does.Contain($"unsupported rope type '{type}' in {key}"));

    [Test]
    public void Llama3RopeMissingAField() =>
        Assert.That(Fails(Base + """, "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}""").Message,
            Does.Contain("missing 'rope_parameters.original_max_position_embeddings'"));

    [Test]
    public void UnsupportedActivation() =>
        Assert.That(Fails(Base + """, "hidden_act": "gelu" """).Message, Does.Contain("unsupported hidden_act 'gelu'"));

    [Test]
    public void QwenSlidingWindowIsRefused() =>
        Assert.That(Fails(Base.Replace("LlamaForCausalLM", "Qwen2ForCausalLM") + """, "use_sliding_window": true""").Message,
            Does.Contain("use_sliding_window"));

    [Test]
    public void UnknownLayerTypeIsNamed() =>
        Assert.That(Fails(Base.Replace("LlamaForCausalLM", "SmolLM3ForCausalLM") + """, "use_sliding_window": true, "sliding_window": 8, "layer_types": ["full_attention", "chunked_attention"]""").Message,
            Does.Contain("unsupported layer type 'chunked_attention'"));

    [Test]
    public void SmolLM3NoRopeLayers()
    {
        var s = TransformerSpec.From(ModelConfig.Load(RepoPaths.RequireSharedModel("rand-smollm3")));
        Assert.That(s.LayerAttention.Select(l => l.Rope is not null), Is.EqualTo(new[] { true, false, true, false }));
        Assert.That(s.LayerAttention.Select(l => l.Window), Has.All.Null);
    }

    private const string Qwen3Moe = """
        "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 512, "intermediate_size": 1024, "num_hidden_layers": 4,
        "num_attention_heads": 8, "vocab_size": 1000, "max_position_embeddings": 2048, "moe_intermediate_size": 256, "num_experts_per_tok": 2
        """;

    [Test]
    public void Qwen3MoeDenseLayersAndDefaults()
    {
        using var dir = new TempDirectory();
        var s = Describe(dir, Qwen3Moe + """, "num_experts": 8, "decoder_sparse_step": 2, "mlp_only_layers": [3]""");
        var moe = s.Moe!;
        // Sparse where (i + 1) % 2 == 0 and i is not in mlp_only_layers; norm_topk_prob defaults to false.
        Assert.That(moe.SparseLayers, Is.EqualTo(new[] { false, true, false, false }));
        Assert.That(moe.Router, Is.EqualTo(new RouterSpec(8, 2, RouterScoring.Softmax, NormalizeTopK: false)));
        Assert.That((moe.ExpertIntermediateSize, moe.Module, moe.ExpertNames, s.IntermediateSize), Is.EqualTo((256, "mlp", MlpNames.Standard, 1024)));
        Assert.That((s.QkNorm, s.IsSparse(1), s.IsSparse(3)), Is.EqualTo((QkNormPlacement.PerHead, true, false)));

        // transformers 5 saves num_experts as num_local_experts.
        var saved = Describe(dir, Qwen3Moe + """, "num_local_experts": 16, "norm_topk_prob": true""");
        Assert.That(saved.Moe!.Router, Is.EqualTo(new RouterSpec(16, 2, RouterScoring.Softmax, NormalizeTopK: true)));
        Assert.That(saved.Moe.SparseLayers, Has.All.True);
    }

    private const string GptOss = """
        "architectures": ["GptOssForCausalLM"], "hidden_size": 256, "intermediate_size": 384, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 2048, "max_position_embeddings": 131072,
        "attention_bias": true, "num_local_experts": 8, "num_experts_per_tok": 2, "sliding_window": 128, "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                            "original_max_position_embeddings": 4096, "truncate": false}
        """;

    [Test]
    public void GptOssSinksSlidingEvenLayersYarnFusedExperts()
    {
        using var dir = new TempDirectory();
        var s = Describe(dir, GptOss);
        Assert.That((s.QkvBias, s.OutputBias, s.AttentionSinks, s.Activation), Is.EqualTo((true, true, true, MlpActivation.ClampedSwiGlu)));
        // GptOssConfig's default layer_types: sliding on even layers.
        Assert.That(s.LayerAttention.Select(l => l.Window), Is.EqualTo(new int?[] { 128, null, 128, null }));
        var yarn = s.LayerAttention[0].Rope!;
        Assert.That((yarn.Type, yarn.Theta, yarn.Yarn!.Factor, yarn.Yarn.OriginalMaxPositionEmbeddings, yarn.Yarn.Truncate), Is.EqualTo((RopeType.Yarn, 150000.0, 32.0, 4096, false)));
        var moe = s.Moe!;
        Assert.That(moe.Router, Is.EqualTo(new RouterSpec(8, 2, RouterScoring.Softmax, NormalizeTopK: true)));
        Assert.That((moe.Module, moe.RouterModule, moe.RouterBias, moe.FusedExperts, moe.ExpertIntermediateSize), Is.EqualTo(("mlp", "router", true, true, 384)));
        Assert.That(moe.SparseLayers, Has.All.True);
    }

    [Test]
    public void GptOssRefusesWhatItDoesNotImplementNamingTheKey()
    {
        Assert.That(Fails(GptOss + """, "swiglu_limit": 8.0""").Message, Does.Contain("swiglu_limit"));
        Assert.That(Fails(GptOss.Replace("\"yarn\"", "\"yarn2\"")).Message, Does.Contain("rope_type").And.Contain("yarn2"));
        Assert.That(Fails(GptOss.Replace("\"factor\": 32.0,", "")).Message, Does.Contain("factor"));
    }

    [Test]
    public void MoeConfigErrorsNameTheKey()
    {
        Assert.That(Fails(Qwen3Moe + """, "num_experts": 8, "decoder_sparse_step": 0""").Message, Does.Contain("decoder_sparse_step is 0"));
        Assert.That(Fails(Qwen3Moe.Replace("\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9") + """, "num_experts": 8""").Message,
            Does.Contain("num_experts_per_tok is 9"));
        Assert.That(Fails(Qwen3Moe).Message, Does.Contain("num_local_experts"));
    }

    [Test]
    public void MixtralEveryLayerIsAMixtureOfExperts()
    {
        var s = TransformerSpec.From(ModelConfig.Load(RepoPaths.RequireSharedModel("rand-mixtral")));
        var moe = s.Moe!;
        Assert.That(moe.Router, Is.EqualTo(new RouterSpec(4, 2, RouterScoring.Softmax, NormalizeTopK: true)));
        Assert.That((moe.ExpertIntermediateSize, moe.Module, moe.RouterModule, moe.ExpertNames), Is.EqualTo((384, "block_sparse_moe", "gate", MlpNames.Mixtral)));
        Assert.That(moe.SparseLayers, Is.EqualTo(new[] { true, true }));
        Assert.That(s.LayerAttention[0].Rope, Is.EqualTo(new RopeConfig(RopeType.Default, 1e6)));
    }

    [Test]
    public void Glm4MoeSigmoidRouterSharedExpertAndDenseFirstLayers()
    {
        var s = TransformerSpec.From(ModelConfig.Load(RepoPaths.RequireSharedModel("rand-glm4-moe")));
        var moe = s.Moe!;
        Assert.That(moe.Router, Is.EqualTo(new RouterSpec(4, 2, RouterScoring.Sigmoid, NormalizeTopK: true, Scale: 2.5f, NormEpsilon: 1e-20f)));
        Assert.That((moe.ExpertIntermediateSize, moe.SharedIntermediateSize, moe.CorrectionBias), Is.EqualTo((128, 128, "e_score_correction_bias")));
        Assert.That(moe.SparseLayers, Is.EqualTo(new[] { false, true, true }), "first_k_dense_replace = 1");
        // Partial rotary on halves (GLM-4's dense model pairs interleaved), q/k/v bias, no q/k norm here.
        Assert.That((s.RotaryDims, s.RotaryPairing, s.QkvBias, s.OutputBias, s.QkNorm), Is.EqualTo((32, RotaryPairing.Halves, true, false, QkNormPlacement.None)));
    }

    [Test]
    public void GroupLimitedRoutingIsReadAndBadGroupsAreRefused()
    {
        const string glm = """
            "architectures": ["Glm4MoeForCausalLM"], "hidden_size": 512, "intermediate_size": 1024, "num_hidden_layers": 2,
            "num_attention_heads": 8, "vocab_size": 1000, "max_position_embeddings": 2048, "moe_intermediate_size": 256,
            "num_experts_per_tok": 2, "n_routed_experts": 16, "routed_scaling_factor": 2.5, "first_k_dense_replace": 1
            """;
        using var dir = new TempDirectory();
        var router = Describe(dir, glm + """, "n_group": 4, "topk_group": 2""").Moe!.Router;
        Assert.That((router.Groups, router.TopKGroups, router.GroupLimited), Is.EqualTo((4, 2, true)));
        Assert.That(Describe(dir, glm + """, "n_group": 4, "topk_group": 4""").Moe!.Router.GroupLimited, Is.False);
        Assert.That(Fails(glm + """, "n_group": 3, "topk_group": 1""").Message, Does.Contain("n_group is 3"));
        Assert.That(Fails(glm + """, "n_group": 16, "topk_group": 1""").Message, Does.Contain("n_group is 16"), "groups of one expert");
        Assert.That(Fails(glm + """, "n_group": 8, "topk_group": 9""").Message, Does.Contain("topk_group is 9"));
    }

    [Test]
    public void DeepseekV3LatentAttentionGroupedRouterAndDenseFirstLayer()
    {
        var s = TransformerSpec.From(ModelConfig.Load(RepoPaths.RequireSharedModel("rand-deepseek-v3")));
        Assert.That(s.LatentAttention, Is.EqualTo(new LatentAttentionSpec(null, 128, 64, 32, 64, false)));
        // head_dim in the config is the rope part (32); the spec's head width is nope + rope, and only rope rotates.
        Assert.That((s.Heads, s.KvHeads, s.HeadDim, s.RotaryDims, s.RotaryPairing), Is.EqualTo((4, 4, 96, 32, RotaryPairing.Interleaved)));
        Assert.That(s.AttentionScale, Is.EqualTo((float)(1 / Math.Sqrt(96))));
        var moe = s.Moe!;
        Assert.That(moe.Router, Is.EqualTo(new RouterSpec(4, 2, RouterScoring.Sigmoid, NormalizeTopK: true, Scale: 2.5f, NormEpsilon: 1e-20f)));
        Assert.That((moe.ExpertIntermediateSize, moe.SharedIntermediateSize, moe.CorrectionBias, moe.Module), Is.EqualTo((128, 128, "e_score_correction_bias", "mlp")));
        Assert.That(moe.SparseLayers, Is.EqualTo(new[] { false, true, true }));
    }

    private const string Deepseek = """
        "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 512, "intermediate_size": 1024, "num_hidden_layers": 2,
        "num_attention_heads": 8, "vocab_size": 1000, "max_position_embeddings": 163840, "moe_intermediate_size": 256,
        "num_experts_per_tok": 8, "n_routed_experts": 32, "n_group": 8, "topk_group": 4, "first_k_dense_replace": 1,
        "kv_lora_rank": 128, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128
        """;

    [Test]
    public void DeepseekV3QueryLoraYarnScaleAndGroups()
    {
        // DeepSeek-V3's own rope: yarn, factor 40, mscale = mscale_all_dim = 1 over 4096 original positions.
        using var dir = new TempDirectory();
        var s = Describe(dir, Deepseek + """
            , "q_lora_rank": 384, "rope_scaling": {"type": "yarn", "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
            "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1}, "rope_theta": 10000
            """);
        Assert.That(s.LatentAttention!.QueryRank, Is.EqualTo(384));
        double m = 0.1 * Math.Log(40) + 1;
        Assert.That(s.AttentionScale!.Value, Is.EqualTo(m * m / Math.Sqrt(192)).Within(1e-6), "(128 + 64)^−½ · mscale(40, 1)²");
        var yarn = s.LayerAttention[0].Rope!.Yarn!;
        Assert.That((yarn.Factor, yarn.OriginalMaxPositionEmbeddings, yarn.AttentionFactor), Is.EqualTo((40.0, 4096, 1.0)), "mscale / mscale_all_dim");
        Assert.That((s.Moe!.Router.Groups, s.Moe.Router.TopKGroups, s.Moe.Router.Scale), Is.EqualTo((8, 4, 2.5f)));
        Assert.That(Describe(dir, Deepseek + """, "rope_interleave": false""").RotaryPairing, Is.EqualTo(RotaryPairing.Halves));
    }

    [TestCase(""", "rope_parameters": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}""", "rope type Llama3")]
    [TestCase(", \"scoring_func\": \"softmax\"", "scoring_func 'softmax'")]
    [TestCase(", \"topk_method\": \"greedy\"", "topk_method 'greedy'")]
    [TestCase(""", "q_lora_rank": 0""", "q_lora_rank is 0")]
    public void DeepseekV3RefusesWhatItDoesNotRun(string extra, string message) =>
        Assert.That(Fails(Deepseek + extra).Message, Does.Contain(message));

    [Test]
    public void DeepseekV3RefusesAnOddRopePart() =>
        Assert.That(Fails(Deepseek.Replace("\"qk_rope_head_dim\": 64", "\"qk_rope_head_dim\": 63")).Message, Does.Contain("qk_rope_head_dim is 63"));
}
