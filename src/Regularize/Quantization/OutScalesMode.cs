namespace Converter.Regularize.Quantization;

/// <summary>Whether output-channel scales are applied (docs/exl3-format.md §3.3; CLI --out-scales).</summary>
public enum OutScalesMode
{
    /// <summary>Always (exllamav3's default since 2026-03-01).</summary>
    Always,

    /// <summary>Never: svh holds only the sign flips.</summary>
    Never,

    /// <summary>Only when the Hessian's diagonal is not dominated by a few channels (skew &lt; 0.15).</summary>
    Auto,
}

/// <summary>Which Hessian drives LDLQ and the proxy error (§3.4 observation).</summary>
public enum HessianBasis
{
    /// <summary>Had·diag(su)·H·diag(su)·Had: the exact Hessian of the basis that is quantized (our default).</summary>
    Exact,

    /// <summary>Had·diag(sign)·H·diag(sign)·Had: exllamav3's rotation, ignoring the input scales.</summary>
    SignOnly,
}
