using System.CommandLine;
using System.Globalization;
using Converter.Formats.IO;
using Converter.Regularize.Quantization;

namespace Converter.Cli.Commands.Convert;

/// <summary>
/// The quantizer's options (issue 13): left out, the drift target and the sequential capture are on
/// (<see cref="QuantizerTuning.Default"/>), the rest as exllamav3's; --fast is exllamav3's quantizer as it is.
/// </summary>
public sealed class QuantizerOptions
{
    private readonly Option<string> _scaleChoice = new("--scale-choice")
    {
        Description = "Experimental. How each linear's global scale is chosen: tile-mse (exllamav3: the MSE of encoding sampled tiles) or proxy " +
            "(a few scales around that one, each run through LDLQ on a column sample, judged by the Hessian-weighted proxy error)",
        DefaultValueFactory = _ => "tile-mse",
    };
    private readonly Option<int> _refinePasses = new("--refine-passes")
    {
        Description = "Experimental. Passes after LDLQ that re-encode each 16-row block against the Hessian-weighted error with the other blocks fixed, " +
            "keeping a tile's new code only where it lowers the proxy error (0 = none)",
        DefaultValueFactory = _ => 0,
    };
    private readonly Option<bool> _refitScales = new("--refit-scales")
    {
        Description = "Experimental. After LDLQ, refit the stored input and output channel scales (suh, svh) to the chosen codes by least squares on " +
            "the Hessian-weighted error, kept only where that lowers it",
    };
    private readonly Option<double?> _damping = new("--damping")
    {
        Description = "Experimental. Hessian damping σ: σ·mean(diag H) is added to the diagonal before LDLQ. Default: " +
            QuantizerTuning.Exllamav3.Damping.ToString(CultureInfo.InvariantCulture) + " (exllamav3's)",
    };

    private readonly Option<double> _driftTarget = new("--drift-target")
    {
        Description = "Strength α of the drift-aware target: each linear quantizes W + α·(its least-squares correction toward the original " +
            "model's outputs on the original model's own inputs), instead of W on the quantized model's inputs. Keeps a second calibration stream " +
            "(on the GPU beside the first when both fit, else on the host). 0 = off (exllamav3's). Default 1: with --sequential, KL 0.77-0.87x " +
            "exllamav3's at 2-4 bpw (docs/benchmarks.md)",
        DefaultValueFactory = _ => QuantizerTuning.Default.DriftTarget,
    };

    private readonly Option<bool> _sequential = new("--sequential")
    {
        Description = "Capture each decoder block's Hessians one sublayer at a time, each after the sublayers before it are quantized " +
            "(GPTQ's true-sequential order: o_proj sees the quantized q/k/v, the MLP the quantized attention, down_proj the quantized gate/up). " +
            "On by default; --sequential false captures the whole block once (exllamav3's)",
        DefaultValueFactory = _ => QuantizerTuning.Default.SequentialCapture,
    };

    private readonly Option<bool> _fast = new("--fast")
    {
        Description = "exllamav3's quantizer as it is: no drift target and one capture per block (--drift-target 0 --sequential false). " +
            "An 8B layer converts 1.5-1.6x faster on a GPU (1.75x on a CPU) at about 25% higher KL",
    };

    public IReadOnlyList<Option> Options => [_scaleChoice, _refinePasses, _refitScales, _damping, _driftTarget, _sequential, _fast];

    /// <summary>Whether the drift target or the capture was given on the command line (<see cref="ConvertSettings.QuantizerChosen"/>).</summary>
    public bool Chosen(ParseResult parse) => new Option[] { _driftTarget, _sequential, _fast }.Any(o => parse.GetResult(o) is { Implicit: false });

    public QuantizerTuning Bind(ParseResult parse)
    {
        var choice = parse.GetValue(_scaleChoice) switch
        {
            "tile-mse" => ScaleChoice.TileMse,
            "proxy" => ScaleChoice.Proxy,
            var s => throw new UsageException($"--scale-choice must be tile-mse or proxy, got '{s}'"),
        };
        int passes = parse.GetValue(_refinePasses);
        if (passes is < 0 or > 16)
            throw new UsageException($"--refine-passes must be 0..16, got {passes}");
        double damping = parse.GetValue(_damping) ?? QuantizerTuning.Exllamav3.Damping;
        if (!(damping > 0 && damping <= 10))
            throw new UsageException($"--damping must be in (0, 10], got {damping.ToString(CultureInfo.InvariantCulture)}");
        bool fast = parse.GetValue(_fast);
        if (fast && new Option[] { _driftTarget, _sequential }.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false }) is { } given)
            throw new UsageException($"--fast already sets --drift-target 0 and --sequential false; drop {given.Name} or --fast");
        double drift = fast ? 0 : parse.GetValue(_driftTarget);
        // 2 is past any useful step (1 is the least-squares target itself); a larger α only overshoots it.
        if (!(drift >= 0 && drift <= 2))
            throw new UsageException($"--drift-target must be in [0, 2], got {drift.ToString(CultureInfo.InvariantCulture)}");
        return new QuantizerTuning
        {
            ScaleChoice = choice,
            RefinePasses = passes,
            RefitScales = parse.GetValue(_refitScales),
            Damping = damping,
            DriftTarget = drift,
            SequentialCapture = !fast && parse.GetValue(_sequential)
        };
    }
}
