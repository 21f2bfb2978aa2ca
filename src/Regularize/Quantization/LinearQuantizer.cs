using Converter.Compute;
using Converter.Regularize.Hessian;
using Converter.Regularize.Ldl;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Regularize.Quantization;

/// <summary>
/// Quantizes one linear layer end to end (docs/exl3-format.md §3, pseudo-code in §10): transpose and pad, output scales
/// and right rotation, input scales and left rotation, global scale search, LDLQ against the Hessian in the
/// quantized basis, bit packing.
/// </summary>
public static class LinearQuantizer
{
    /// <summary>Padding of both dimensions (§3.1: Hadamard blocks and ldlq need multiples of 128).</summary>
    public const int Padding = 128;

    public static int Pad(int dim) => (dim + Padding - 1) / Padding * Padding;

    /// <summary>Transposes and pads the weight (not timed), then <see cref="QuantizeTransposed"/>.</summary>
    /// <param name="weight">HF weight (out, in), float32.</param>
    /// <param name="encoder">Encoder for this tensor's K over <paramref name="codebook"/>'s values.</param>
    /// <param name="rng">Draws the output sign flips of this tensor.</param>
    public static QuantizedLinear Quantize(string name, ReadOnlySpan<float> weight, int outFeatures, int inFeatures, float[]? bias,
        GroupHessian hessian, CodebookTable codebook, ITileEncoder encoder, LinearQuantizerSettings settings, Random rng) =>
        QuantizeTransposed(name, TransposePadded(weight, outFeatures, inFeatures, Pad(inFeatures), Pad(outFeatures)), outFeatures, inFeatures, bias,
            hessian, codebook, encoder, settings, rng);

    /// <summary>
    /// <see cref="Quantize"/> of a weight already transposed and padded (<see cref="TransposePadded"/>), whose array it
    /// takes over (it is regularized in place and then holds Q), so a caller that made it from a temporary need not
    /// keep both: the drift target of an 8B's head is 2.1 GB in either layout.
    /// </summary>
    /// <param name="w">W (k, n): the HF weight (out, in) transposed and zero-padded.</param>
    public static QuantizedLinear QuantizeTransposed(string name, float[] w, int outFeatures, int inFeatures, float[]? bias,
        GroupHessian hessian, CodebookTable codebook, ITileEncoder encoder, LinearQuantizerSettings settings, Random rng)
    {
        var held = Hold(Pad(inFeatures), Pad(outFeatures), hessian, encoder, settings);
        try
        {
            held.Load(w);
        }
        catch
        {
            held.Dispose();
            throw;
        }
        return QuantizeHeld(name, held, outFeatures, inFeatures, bias, hessian, codebook, encoder, settings, rng);
    }

    /// <summary>
    /// Where <see cref="QuantizeHeld"/> will regularize a (k, n) linear: on <paramref name="settings"/>' solver's device
    /// (<see cref="ILdlqSolver.Hold"/>) where the settings allow it (<see cref="LinearQuantizerSettings.TargetOnDevice"/>)
    /// and every step runs there (a Hessian, the default tuning; refinement, refit and the proxy scale search read host
    /// arrays), else on the host. Empty: the caller loads W or makes the drift target in it.
    /// </summary>
    public static LinearTarget Hold(int k, int n, GroupHessian hessian, ITileEncoder encoder, LinearQuantizerSettings settings) =>
        settings.TargetOnDevice && hessian.FallbackReason is null && settings.Tuning is { RefinePasses: 0, RefitScales: false, ScaleChoice: ScaleChoice.TileMse }
            ? settings.Ldlq.Hold(k, n, encoder)
            : new HostLinearTarget(k, n);

    /// <summary>
    /// <see cref="QuantizeTransposed"/> of the W <paramref name="held"/> holds (loaded; from <see cref="Hold"/>), which it
    /// takes over and disposes: regularized where it is held, then given to Q.
    /// </summary>
    /// <param name="reconstructWhereHeld">
    /// Make the reconstruction where Q is held (<see cref="LinearTarget.Reconstruction"/>, into
    /// <see cref="QuantizedLinear.Resident"/>), for a caller that swaps it in; a GPU then neither rotates Q on the host
    /// nor uploads the result for the forward (0.17 s of an 8B layer's GPU idle at 128 × 512, session 30).
    /// </param>
    public static QuantizedLinear QuantizeHeld(string name, LinearTarget held, int outFeatures, int inFeatures, float[]? bias,
        GroupHessian hessian, CodebookTable codebook, ITileEncoder encoder, LinearQuantizerSettings settings, Random rng, bool reconstructWhereHeld = false)
    {
        using var _ = held;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int k = Pad(inFeatures), n = Pad(outFeatures);
        if (hessian.PaddedK != k)
            throw new ArgumentException($"{name}: Hessian is {hessian.PaddedK} wide, layer input pads to {k}");
        if (held.K != k || held.N != n)
            throw new ArgumentException($"{name}: the held weight is {held.K}×{held.N}, not {k}×{n}");
        if (!held.Loaded)
            throw new ArgumentException($"{name}: no weight was loaded into its target");
        // The scale refit (an experiment) starts again from the unregularized weight.
        var unregularized = settings.Tuning.RefitScales ? (float[])held.HostWeight().Clone() : null;

        var outputSigns = GroupHessian.RandomSigns(n, rng);
        bool outScales = hessian.FallbackReason is not null
            ? settings.OutScales == OutScalesMode.Always
            : LinearRegularizer.ApplyOutScales(settings.OutScales, hessian.Diagonal());
        var (sv, inverse) = LinearRegularizer.OutputScales(held.ColumnSquares(), k, outputSigns, outScales);
        held.ScaleColumnsAndRotateRows(inverse);

        // Rows are scaled to the codebook's own RMS, so the global scale lands near 1 for every codebook
        // (exllamav3 divides by 3INST's 1.24371088 for all, §1.5, and lets g absorb MUL1's mismatch).
        var su0 = LinearRegularizer.InputScales(held.RowSquares(), n, hessian.InputSigns, codebook.Rms);
        held.FormTarget(su0);

        double regularizeSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        double g = GlobalScaleSearch.Search(new TileQuantizer(encoder), held.SampleTiles()).Scale;
        if (settings.Tuning.ScaleChoice == ScaleChoice.Proxy && hessian.FallbackReason is null)
            g = ProxyScale(held.HostWeight(), k, n, su0, g, hessian, encoder, settings);
        var su = su0.Select(v => LinearRegularizer.RoundToHalf((float)(v / g))).ToArray();
        held.FormTarget(su);
        double searchSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();

        // H' and its factor are formed where LDLQ runs and stay there for the proxy error (a GPU keeps them on the device).
        using var factored = hessian.FallbackReason is null
            ? settings.Ldlq.FactorInBasis(hessian, settings.Basis == HessianBasis.Exact ? su : hessian.InputSigns, settings.Sigma, settings.Algebra,
                lastUse: !settings.Tuning.RefitScales)
            : null;
        string? fallback = hessian.FallbackReason;
        if (factored is { Factored: false })
            fallback = $"Hessian not positive definite after {BlockLdl.MaxRetries} damping retries";
        double factorSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();

        // W's last use was the input side above: Q takes its array, or stays where the target is held until a step
        // here reads it on the host (the lean proxy traces, a caller that does not reconstruct where Q is held).
        var result = settings.Ldlq.Quantize(held, factored, encoder);
        var hostQ = result.Quantized;
        float[] HostQ() => hostQ ??= held.QuantizedOnHost();
        if (settings.Tuning.RefinePasses > 0 && factored is { Factored: true })
            ProxyRefinement.Refine(held.HostTarget(), HostQ(), result.States, factored.BasisHessian(), k, n, encoder, settings.Tuning.RefinePasses, settings.Algebra);
        factored?.ReleaseFactor();
        double ldlqSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var trellis = Pack(result.States, k, n, encoder.Bits);
        bool rmse = factored is null;
        double proxy = rmse ? Rmse(held.HostTarget(), HostQ()) : ProxyError.Compute(held, HostQ, factored!, settings.Algebra);
        double? proxyBeforeRefit = null;
        if (settings.Tuning.RefitScales && !rmse)
        {
            var refit = ScaleRefit.Refit(unregularized!, HostQ(), hessian.Damped!, k, n, su, sv,
                inFeatures, outFeatures, settings.Algebra);
            (su, sv, proxyBeforeRefit, proxy) = (refit.Suh, refit.Svh, refit.ProxyBefore, refit.ProxyAfter);
        }
        // Q is read on the host below unless the reconstruction is made where it is held: then Decoded is Q's host copy
        // only where a step above brought it down (the caller swaps the reconstruction in, and needs no Q).
        var resident = reconstructWhereHeld ? held.Reconstruction(su, sv, outFeatures, inFeatures) : null;
        var decoded = resident is null ? HostQ() : hostQ;
        double finishSeconds = clock.Elapsed.TotalSeconds;

        return new QuantizedLinear
        {
            Name = name,
            Bits = encoder.Bits,
            Codebook = codebook.Spec,
            InFeatures = inFeatures,
            OutFeatures = outFeatures,
            PaddedIn = k,
            PaddedOut = n,
            Trellis = trellis,
            Decoded = decoded,
            Resident = resident,
            Suh = su,
            Svh = sv,
            Bias = bias,
            ProxyError = proxy,
            ProxyIsRmse = rmse,
            ProxyBeforeRefit = proxyBeforeRefit,
            GlobalScale = g,
            OutScalesApplied = outScales,
            Fallback = fallback,
            CholeskyRetries = factored?.Retries ?? 0,
            RegularizeSeconds = regularizeSeconds,
            ScaleSearchSeconds = searchSeconds,
            FactorSeconds = factorSeconds,
            LdlqSeconds = ldlqSeconds,
            FinishSeconds = finishSeconds,
        };
    }

    /// <summary>
    /// <see cref="ProxyScaleSearch"/> from the tile-MSE scale <paramref name="scale0"/>, with the exact Hessian basis of
    /// su0/g₀ (whatever basis LDLQ then uses, the comparison needs the true output error); g₀ when that Hessian does
    /// not factor.
    /// </summary>
    private static double ProxyScale(float[] w, int k, int n, float[] su0, double scale0, GroupHessian hessian, ITileEncoder encoder, LinearQuantizerSettings settings)
    {
        var su = su0.Select(v => LinearRegularizer.RoundToHalf((float)(v / scale0))).ToArray();
        using var factored = settings.Ldlq.FactorInBasis(hessian, su, settings.Sigma, settings.Algebra);
        return factored.Factored ? ProxyScaleSearch.Search(w, k, n, su0, scale0, factored, encoder, settings.Ldlq, settings.Algebra).Scale : scale0;
    }

    /// <summary>W (k, n) = the HF weight (out, in) transposed, zero-padded to (k, n).</summary>
    public static float[] TransposePadded(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, int k, int n)
    {
        if (weight.Length != (long)outFeatures * inFeatures)
            throw new ArgumentException($"weight has {weight.Length} values, expected {outFeatures}×{inFeatures}");
        var w = WeightArrays.Zeroed(ArrayLength.Of(k, n, "padded weight"));
        BlockTranspose.Into(weight, outFeatures, inFeatures, inFeatures, w, n);
        return w;
    }

    /// <summary>Packs tile-major states into the stored (k/16, n/16, 16·K) int16 tensor.</summary>
    public static unsafe short[] Pack(ReadOnlySpan<ushort> states, int k, int n, int bits)
    {
        int tiles = k / TileLayout.Side * (n / TileLayout.Side), words = TrellisPacking.WordsPerTile(bits);
        var packed = new short[tiles * words];
        fixed (ushort* p = states)
        {
            nint address = (nint)p;
            Parallel.For(0, tiles, t =>
                TrellisPacking.Pack(new ReadOnlySpan<ushort>((ushort*)address + (long)t * TileLayout.Length, TileLayout.Length), bits, packed.AsSpan(t * words, words)));
        }
        return packed;
    }

    private static double Rmse(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double ss = 0;
        for (int i = 0; i < a.Length; i++)
            ss += (double)(a[i] - b[i]) * (a[i] - b[i]);
        return Math.Sqrt(ss / a.Length);
    }
}
