namespace Converter.Formats.HuggingFace;

/// <summary>RoPE frequency schemes we implement.</summary>
public enum RopeType
{
    /// <summary>inv_freq = theta^(-2i/d), unscaled.</summary>
    Default,
    /// <summary>Llama 3.1 frequency-dependent scaling (transformers' _compute_llama3_parameters).</summary>
    Llama3,
}

/// <summary>Parameters of Llama 3.1 RoPE scaling.</summary>
public sealed record Llama3RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

/// <summary>Rotary embedding settings; <see cref="Llama3"/> is set exactly when <see cref="Type"/> is <see cref="RopeType.Llama3"/>.</summary>
public sealed record RopeConfig(RopeType Type, double Theta, Llama3RopeScaling? Llama3 = null)
{
    /// <summary>transformers' default rope_theta when a config has none.</summary>
    public const double DefaultTheta = 10000.0;

    /// <summary>
    /// Reads both spellings transformers has used: the current <c>rope_parameters</c> object
    /// ({rope_type, rope_theta, factor, ...}) and the older top-level <c>rope_theta</c> plus optional
    /// <c>rope_scaling</c> ({rope_type or type, factor, ...}); <c>rope_parameters</c> wins when both are present.
    /// </summary>
    internal static RopeConfig Parse(ConfigFields config)
    {
        var parameters = config.Object("rope_parameters");
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
            _ => throw config.Error($"unsupported rope type '{typeName}' (supported: default, llama3)"),
        };
    }
}
