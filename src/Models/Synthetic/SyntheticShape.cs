using System.Text.Json.Nodes;

namespace Converter.Models.Synthetic;

/// <summary>The shape of a model to synthesize: enough to write a config.json that our forward pass and exllamav3 accept.</summary>
public sealed record SyntheticShape(
    string Architecture,
    int Hidden,
    int Intermediate,
    int Layers,
    int Heads,
    int KvHeads,
    int HeadDim,
    int Vocab,
    bool TiedEmbeddings,
    double RopeTheta,
    bool Llama3Rope = false,
    SyntheticExperts? Experts = null)
{
    /// <summary>Named real-model shapes (from their published config.json files) and small test shapes.</summary>
    public static IReadOnlyDictionary<string, SyntheticShape> Presets { get; } = new Dictionary<string, SyntheticShape>
    {
        ["llama-3-8b"] = new("LlamaForCausalLM", 4096, 14336, 32, 32, 8, 128, 128256, false, 500000, Llama3Rope: true),
        // Llama 3.1/3.3 70B: its hidden states pass 2 GiB at the default calibration, its bf16 embedding is 2.1 GB.
        ["llama-3-70b"] = new("LlamaForCausalLM", 8192, 28672, 80, 64, 8, 128, 128256, false, 500000, Llama3Rope: true),
        ["llama-3.2-1b"] = new("LlamaForCausalLM", 2048, 8192, 16, 32, 8, 64, 128256, true, 500000, Llama3Rope: true),
        ["qwen2.5-7b"] = new("Qwen2ForCausalLM", 3584, 18944, 28, 28, 4, 128, 152064, false, 1000000),
        ["qwen3-8b"] = new("Qwen3ForCausalLM", 4096, 12288, 36, 32, 8, 128, 151936, false, 1000000),
        ["mistral-7b"] = new("MistralForCausalLM", 4096, 14336, 32, 32, 8, 128, 32768, false, 1000000),
        // Qwen3-30B-A3B: 128 experts of 768 per layer, 8 per token; issue 12's throughput target (a whole model at 4 bpw
        // in under 20 minutes on one H200). Its dense intermediate_size (6144) is unused: every layer is sparse.
        ["qwen3-30b-a3b"] = new("Qwen3MoeForCausalLM", 2048, 6144, 48, 32, 4, 128, 151936, false, 1000000,
            Experts: new SyntheticExperts(128, 8, 768, NormalizeTopK: true)),
        ["mixtral-8x7b"] = new("MixtralForCausalLM", 4096, 14336, 32, 32, 8, 128, 32000, false, 1000000,
            Experts: new SyntheticExperts(8, 2, 14336, NormalizeTopK: true)),
        // Small enough to convert in seconds on a laptop: what the pipeline tests use.
        ["test-tiny"] = new("LlamaForCausalLM", 128, 256, 1, 2, 1, 64, 4096, true, 10000),
        ["test-tiny-moe"] = new("Qwen3MoeForCausalLM", 128, 256, 1, 2, 1, 64, 4096, false, 10000,
            Experts: new SyntheticExperts(8, 2, 64, NormalizeTopK: true)),
    };

    public static string PresetNames => string.Join(", ", Presets.Keys);

    public JsonObject ToConfigJson()
    {
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = Architecture switch
            {
                "LlamaForCausalLM" => "llama",
                "MistralForCausalLM" => "mistral",
                "Qwen2ForCausalLM" => "qwen2",
                "Qwen3ForCausalLM" => "qwen3",
                "Qwen3MoeForCausalLM" => "qwen3_moe",
                "MixtralForCausalLM" => "mixtral",
                _ => throw new ArgumentException($"unsupported architecture {Architecture}"),
            },
            ["hidden_size"] = Hidden,
            ["intermediate_size"] = Intermediate,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = Vocab,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = 1e-5,
            ["max_position_embeddings"] = 8192,
            ["tie_word_embeddings"] = TiedEmbeddings,
            ["torch_dtype"] = "bfloat16",
            ["bos_token_id"] = 0,
            ["eos_token_id"] = 1,
            ["rope_theta"] = RopeTheta,
        };
        if (Experts is { } experts)
        {
            // Mixtral names its expert count num_local_experts and sizes experts by intermediate_size; Qwen3-MoE says
            // num_experts and moe_intermediate_size (the names their published config.json files use).
            if (Architecture == "MixtralForCausalLM")
            {
                config["num_local_experts"] = experts.Count;
                config["intermediate_size"] = experts.Intermediate;
            }
            else
            {
                config["num_experts"] = experts.Count;
                config["moe_intermediate_size"] = experts.Intermediate;
                config["norm_topk_prob"] = experts.NormalizeTopK;
                config["decoder_sparse_step"] = 1;
                config["mlp_only_layers"] = new JsonArray();
            }
            config["num_experts_per_tok"] = experts.PerToken;
        }
        if (Llama3Rope)
        {
            config["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3",
                ["factor"] = 8.0,
                ["low_freq_factor"] = 1.0,
                ["high_freq_factor"] = 4.0,
                ["original_max_position_embeddings"] = 8192,
            };
        }
        return config;
    }
}

/// <summary>A synthesized model's mixture of experts: routed experts per layer, how many a token uses, their width.</summary>
public sealed record SyntheticExperts(int Count, int PerToken, int Intermediate, bool NormalizeTopK);
