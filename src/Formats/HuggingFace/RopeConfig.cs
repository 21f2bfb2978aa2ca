namespace Converter.Formats.HuggingFace;

/// <summary>RoPE frequency schemes we implement.</summary>
public enum RopeType
{
    /// <summary>inv_freq = theta^(-2i/d), unscaled.</summary>
    Default,
    /// <summary>Llama 3.1 frequency-dependent scaling (transformers' _compute_llama3_parameters).</summary>
    Llama3,
    /// <summary>Phi-3's LongRoPE: per-frequency short/long factors and an attention factor (_compute_longrope_parameters).</summary>
    LongRope,
    /// <summary>YaRN: frequencies blended between interpolated and extrapolated by a ramp, cos/sin scaled (_compute_yarn_parameters).</summary>
    Yarn,
}

/// <summary>Parameters of Llama 3.1 RoPE scaling.</summary>
public sealed record Llama3RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

/// <summary>
/// Parameters of LongRoPE: frequency i is divided by short_factor[i], or long_factor[i] once a sequence is longer than
/// <see cref="OriginalMaxPositionEmbeddings"/>; cos and sin are multiplied by <see cref="AttentionFactor"/>.
/// </summary>
public sealed record LongRopeScaling(IReadOnlyList<double> ShortFactor, IReadOnlyList<double> LongFactor, int OriginalMaxPositionEmbeddings, double AttentionFactor);

/// <summary>
/// Parameters of YaRN (transformers' _compute_yarn_parameters): frequencies of dimensions below the correction range
/// [low, high] of (<see cref="BetaFast"/>, <see cref="BetaSlow"/>) rotations over <see cref="OriginalMaxPositionEmbeddings"/>
/// are kept, those above divided by <see cref="Factor"/>, linearly blended between; with <see cref="Truncate"/> the
/// range is widened to whole dimensions. cos and sin are multiplied by <see cref="AttentionFactor"/>.
/// </summary>
public sealed record YarnRopeScaling(double Factor, double BetaFast, double BetaSlow, int OriginalMaxPositionEmbeddings, bool Truncate, double AttentionFactor,
    double? MscaleAllDim = null)
{
    /// <summary>yarn_get_mscale: 0.1·m·ln(scale) + 1, or 1 for scale ≤ 1 (DeepSeek's softmax scale reads it with mscale_all_dim).</summary>
    public static double Mscale(double scale, double m = 1.0) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
}

/// <summary>
/// Rotary embedding settings; <see cref="Llama3"/> / <see cref="LongRope"/> are set exactly when <see cref="Type"/>
/// names them. <see cref="PartialRotaryFactor"/> is the fraction of each head's dimensions that rotate.
/// </summary>
public sealed record RopeConfig(RopeType Type, double Theta, Llama3RopeScaling? Llama3 = null, LongRopeScaling? LongRope = null, YarnRopeScaling? Yarn = null)
{
    /// <summary>transformers' default rope_theta when a config has none.</summary>
    public const double DefaultTheta = 10000.0;

    /// <summary>
    /// Reads both spellings transformers has used: the current <c>rope_parameters</c> object
    /// ({rope_type, rope_theta, factor, ...}) and the older top-level <c>rope_theta</c> plus optional
    /// <c>rope_scaling</c> ({rope_type or type, factor, ...}); <c>rope_parameters</c> wins when both are present.
    /// With <paramref name="layerType"/> (e.g. "sliding_attention"), a <c>rope_parameters</c> object keyed by layer
    /// type (Gemma 3, OLMo 3) gives that type's entry.
    /// </summary>
    public static RopeConfig Parse(ConfigFields config, string? layerType = null)
    {
        var parameters = config.Object("rope_parameters");
        if (parameters != null && layerType != null && parameters.Object(layerType) is { } perType)
            parameters = perType;
        ConfigFields? scaling;
        double theta;
        if (parameters != null)
        {
            scaling = parameters;
            theta = parameters.OptionalDouble("rope_theta") ?? config.OptionalDouble("rope_theta") ?? DefaultTheta;
        }
        else
        {
            scaling = config.Object("rope_scaling");
            theta = config.OptionalDouble("rope_theta") ?? DefaultTheta;
        }
        if (!(theta > 0))
            throw config.Error($"rope_theta is {theta}, expected a positive number");

        // Old configs spell the key "type"; transformers still accepts it.
        var typeName = scaling?.OptionalString("rope_type") ?? scaling?.OptionalString("type") ?? "default";
        return typeName switch
        {
            "default" => new RopeConfig(RopeType.Default, theta),
            "llama3" => new RopeConfig(RopeType.Llama3, theta, new Llama3RopeScaling(
                scaling!.RequiredDouble("factor"),
                scaling.RequiredDouble("low_freq_factor"),
                scaling.RequiredDouble("high_freq_factor"),
                scaling.RequiredPositiveInt("original_max_position_embeddings"))),
            "longrope" => new RopeConfig(RopeType.LongRope, theta, LongRope: ParseLongRope(config, scaling!)),
            "yarn" => new RopeConfig(RopeType.Yarn, theta, Yarn: ParseYarn(config, scaling!)),
            _ => throw config.Error($"unsupported rope type '{typeName}' in {(parameters != null ? "rope_parameters" : "rope_scaling")}.rope_type (supported: default, llama3, longrope, yarn)"),
        };
    }

    /// <summary>
    /// The fraction of head dimensions that rotate: <c>partial_rotary_factor</c> inside rope_parameters or at the
    /// top level (GLM-4, Phi-4-mini), 1 when absent.
    /// </summary>
    public static double PartialRotaryFactor(ConfigFields config)
    {
        var factor = config.Object("rope_parameters")?.OptionalDouble("partial_rotary_factor")
            ?? config.OptionalDouble("partial_rotary_factor") ?? 1.0;
        if (!(factor > 0 && factor <= 1))
            throw config.Error($"partial_rotary_factor is {factor}, expected a number in (0, 1]");
        return factor;
    }

    /// <summary>
    /// transformers' _compute_longrope_parameters: with a top-level original_max_position_embeddings (Phi-3) the
    /// scaling factor is max_position_embeddings / original; the attention factor, unless given, is
    /// √(1 + ln factor / ln original), or 1 when factor ≤ 1.
    /// </summary>
    private static LongRopeScaling ParseLongRope(ConfigFields config, ConfigFields scaling)
    {
        var shortFactor = scaling.RequiredDoubleList("short_factor");
        var longFactor = scaling.RequiredDoubleList("long_factor");
        double? factor = scaling.OptionalDouble("factor");
        int maxPositions = config.RequiredPositiveInt("max_position_embeddings");
        int original;
        if (config.OptionalInt("original_max_position_embeddings") is { } top)
        {
            original = top;
            factor = (double)maxPositions / top;
        }
        else
            original = scaling.OptionalInt("original_max_position_embeddings") ?? maxPositions;
        if (original <= 0)
            throw config.Error($"original_max_position_embeddings is {original}, expected a positive integer");
        double attention = scaling.OptionalDouble("attention_factor")
            ?? (factor is not { } f || f <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(f) / Math.Log(original)));
        return new LongRopeScaling(shortFactor, longFactor, original, attention);
    }

    /// <summary>
    /// transformers 5's _compute_yarn_parameters: factor as given, original_max_position_embeddings from the scaling
    /// (else max_position_embeddings), beta_fast 32 and beta_slow 1 by default, truncate true by default; the attention
    /// factor, unless given, is 0.1·ln(factor) + 1 (1 when factor ≤ 1), or with both mscale and mscale_all_dim the
    /// ratio get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim).
    /// </summary>
    private static YarnRopeScaling ParseYarn(ConfigFields config, ConfigFields scaling)
    {
        double factor = scaling.RequiredDouble("factor");
        if (!(factor > 0))
            throw config.Error($"rope factor is {factor}, expected a positive number");
        int original = scaling.OptionalInt("original_max_position_embeddings") ?? config.RequiredPositiveInt("max_position_embeddings");
        if (original <= 0)
            throw config.Error($"original_max_position_embeddings is {original}, expected a positive integer");
        double betaFast = scaling.OptionalDouble("beta_fast") ?? 32, betaSlow = scaling.OptionalDouble("beta_slow") ?? 1;
        double? mscale = scaling.OptionalDouble("mscale"), mscaleAllDim = scaling.OptionalDouble("mscale_all_dim");
        double attention = scaling.OptionalDouble("attention_factor")
            ?? (mscale is { } m && m != 0 && mscaleAllDim is { } a && a != 0 ? YarnRopeScaling.Mscale(factor, m) / YarnRopeScaling.Mscale(factor, a) : YarnRopeScaling.Mscale(factor));
        return new YarnRopeScaling(factor, betaFast, betaSlow, original, scaling.OptionalBool("truncate") ?? true, attention, mscaleAllDim);
    }
}
