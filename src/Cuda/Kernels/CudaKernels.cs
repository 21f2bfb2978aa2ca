namespace Converter.Cuda;

/// <summary>
/// Every CUDA kernel the converter launches, declared once: source file, name and arguments (named as in the source;
/// <c>ulong</c> = a device pointer, <c>long</c> = long long). All launches go through these declarations, so one grep
/// follows a call from C# to the kernel, and the host-side tests (tests/Cuda.Tests, HostSideTests) check every entry
/// against the <c>extern "C" __global__</c> signature in its source and that no kernel in the sources is left out.
/// </summary>
public static class CudaKernels
{
    public const string DenseSource = "dense.cu";
    public const string ForwardSource = "forward.cu";
    public const string AttentionSource = "attention.cu";
    public const string MoeSource = "moe.cu";
    public const string LdlqSource = "ldlq.cu";
    public const string HadamardSource = "hadamard.cu";
    public const string RegularizeSource = "regularize.cu";
    public const string ViterbiSource = "viterbi.cu";

    /// <summary>The kernel sources (src/Cuda/Kernels/*.cu), each embedded in the assembly.</summary>
    public static IReadOnlyList<string> Sources { get; } = [DenseSource, ForwardSource, AttentionSource, MoeSource, LdlqSource, HadamardSource, RegularizeSource, ViterbiSource];

    // dense.cu: the GPU dense algebra's element-wise helpers (Blas/CudaDenseAlgebra).
    public static readonly CudaKernel<(ulong Src, int Height, int Width, ulong Sum, int K, int C0)> AddLowerStripe = new(DenseSource, "add_lower_stripe");
    public static readonly CudaKernel<(ulong Src, int Width, ulong Sum, int K, int C0)> AddStripe = new(DenseSource, "add_stripe");
    public static readonly CudaKernel<(ulong Sum, int K, double Count, ulong Mean, int Padded, ulong Diagonal)> GramMean = new(DenseSource, "gram_mean");
    public static readonly CudaKernel<(ulong A, int K)> MirrorLower = new(DenseSource, "mirror_lower");
    public static readonly CudaKernel<(ulong W, ulong Q, long N)> SubtractFrom = new(DenseSource, "subtract_from");
    public static readonly CudaKernel<(ulong W, ulong Q, long N)> SubtractInPlace = new(DenseSource, "subtract_in_place");
    public static readonly CudaKernel<(ulong X, long N, ulong Flag)> FlagNonzero = new(DenseSource, "flag_nonzero");
    public static readonly CudaKernel<(ulong H, int Padded, ulong A, int K)> WidenTopLeft = new(DenseSource, "widen_top_left");
    public static readonly CudaKernel<(ulong X, ulong Y, long N)> Narrow = new(DenseSource, "narrow");
    public static readonly CudaKernel<(ulong X, ulong Y, int N, ulong Rows)> RowDots = new(DenseSource, "row_dots");
    public static readonly CudaKernel<(ulong M, int K, float Value)> AddToDiagonal = new(DenseSource, "add_to_diagonal");
    public static readonly CudaKernel<(ulong W, ulong D, int Rows, int K, ulong T, int PaddedK, int PaddedN)> DriftTargetTransposed = new(DenseSource, "drift_target_transposed");
    public static readonly CudaKernel<(ulong W, ulong D, int K, ulong Sums)> DriftShiftRows = new(DenseSource, "drift_shift_rows");
    public static readonly CudaKernel<(ulong W, int Rows, int K, ulong Steps, int Columns, int Offset, ulong T, int PaddedK, int PaddedN, ulong TileSums)> ProjectedTargetTransposed =
        new(DenseSource, "projected_target_transposed");

    // forward.cu: a decoder block's forward (Models/CudaForwardBackend).
    public static readonly CudaKernel<(ulong X, ulong W, float Eps, ulong Y, int Width, int Kind)> NormRows = new(ForwardSource, "norm_rows");
    public static readonly CudaKernel<(ulong X, ulong CosTable, ulong SinTable, int Tokens, int Heads, int HeadDim, int Half, int Interleaved, long Pairs)> Rope =
        new(ForwardSource, "rope");
    public static readonly CudaKernel<(ulong Scores, int Tokens, float Scale, float SoftCap, int Window, long Count, ulong Sinks, int Heads)> CausalSoftmax =
        new(ForwardSource, "causal_softmax");
    public static readonly CudaKernel<(ulong Y, ulong X, long N)> AddInPlace = new(ForwardSource, "add_in_place");
    public static readonly CudaKernel<(ulong Src, int SrcCols, int SrcStride, int SrcOffset, ulong Dst, int DstCols, int DstStride, int DstOffset, int Heads, int Width, long N)>
        CopyHeadColumns = new(ForwardSource, "copy_head_columns");
    public static readonly CudaKernel<(ulong Y, ulong Bias, int Width, long N)> AddBias = new(ForwardSource, "add_bias");
    public static readonly CudaKernel<(ulong Gate, ulong Up, long N)> SwiGlu = new(ForwardSource, "swiglu");
    public static readonly CudaKernel<(ulong Gate, ulong Up, long N)> GeluTanhGate = new(ForwardSource, "gelu_tanh_gate");
    public static readonly CudaKernel<(ulong Gate, ulong Up, float Alpha, float Limit, long N)> ClampedSwiGlu = new(ForwardSource, "clamped_swiglu");
    public static readonly CudaKernel<(ulong X, long N, ulong Flag)> FlagNonfinite = new(ForwardSource, "flag_nonfinite");
    public static readonly CudaKernel<(ulong X, float Factor, long N)> ScaleInPlace = new(ForwardSource, "scale_in_place");
    public static readonly CudaKernel<(ulong X, float Cap, long N)> SoftCap = new(ForwardSource, "soft_cap");
    public static readonly CudaKernel<(ulong A, ulong B, int Width, ulong Sums)> TokenDiff = new(ForwardSource, "token_diff");

    // attention.cu: fused causal attention for long rows, compiled per head and value width (Models/CudaForwardBackend).
    public static readonly CudaKernel<(ulong Q, ulong K, ulong V, ulong Output, int Tokens, int Heads, int KvHeads, float Scale, float SoftCap, int Window, ulong Sinks)>
        CausalAttention = new(AttentionSource, "causal_attention");

    // moe.cu: a mixture of experts' routing, gathers and weighted scatters (Models/CudaForwardBackend).
    public static readonly CudaKernel<(ulong Y, long N)> ZeroFill = new(MoeSource, "zero_fill");
    public static readonly CudaKernel<(ulong Logits, int Experts, int TopK, int Scoring, int Normalize, float NormEps, float Scale, ulong Bias, int Groups,
        int KeptGroups, ulong Selected, ulong Weights, long Tokens)> RouteTopK = new(MoeSource, "route_topk");
    public static readonly CudaKernel<(ulong Selected, ulong Weights, int TopK, long Tokens, int EveryToken, ulong Lists, ulong ListWeights, ulong Counts)> ExpertLists =
        new(MoeSource, "expert_lists");
    public static readonly CudaKernel<(ulong X, ulong List, int Cols, ulong Y, long N)> GatherRows = new(MoeSource, "gather_rows");
    public static readonly CudaKernel<(ulong Target, ulong Y, ulong List, ulong W, int Cols, long N)> ScatterAddRows = new(MoeSource, "scatter_add_rows");

    // ldlq.cu: LDLQ's block loop and the block LDL (Quantization/CudaLdlqSolver).
    public static readonly CudaKernel<(ulong Wr, ulong SpanFeedback, ulong Target, long Count)> LdlqBlockTarget = new(LdlqSource, "ldlq_block_target");
    public static readonly CudaKernel<(ulong Target, int N, ulong Tiles)> LdlqGatherTiles = new(LdlqSource, "ldlq_gather_tiles");
    public static readonly CudaKernel<(ulong States, ulong Table, int N, ulong Rows)> LdlqErrorRows = new(LdlqSource, "ldlq_error_rows");
    public static readonly CudaKernel<(ulong States, ulong Table, int N, long Count, ulong Quantized)> LdlqDecode = new(LdlqSource, "ldlq_decode");
    public static readonly CudaKernel<(ulong H, ulong A, int K, double Add)> LdlDampedCopy = new(LdlqSource, "ldl_damped_copy");
    public static readonly CudaKernel<(ulong L, int K, ulong Factor, ulong Bad)> LdlStrictBlockFactor = new(LdlqSource, "ldl_strict_block_factor");

    // hadamard.cu: the Hessian's rotation into the quantized basis on the device (Quantization/DeviceHadamard).
    public static readonly CudaKernel<(ulong M, int Rows, int Cols, ulong Scales, float Scale)> HadamardColumns = new(HadamardSource, "hadamard_columns");
    public static readonly CudaKernel<(ulong M, int Rows, int Cols, float Scale)> HadamardRows = new(HadamardSource, "hadamard_rows");
    public static readonly CudaKernel<(ulong M, int K, ulong Diagonal)> CopyDiagonal = new(HadamardSource, "copy_diagonal");

    // regularize.cu: a linear's regularization and the scale search's tiles on the device (Quantization/DeviceLinearTarget).
    public static readonly CudaKernel<(ulong W, int K, int N, ulong Squares)> ColumnSquares = new(RegularizeSource, "column_squares");
    public static readonly CudaKernel<(ulong W, int K, int N, ulong Squares)> RowSquares = new(RegularizeSource, "row_squares");
    public static readonly CudaKernel<(ulong W, int N, long Count, ulong Factors)> ScaleColumns = new(RegularizeSource, "scale_columns");
    public static readonly CudaKernel<(ulong W, ulong Target, int N, long Count, ulong Su)> DivideRows = new(RegularizeSource, "divide_rows");
    public static readonly CudaKernel<(ulong T, int K, int N, ulong Means)> TileMeanSquares = new(RegularizeSource, "tile_mean_squares");
    public static readonly CudaKernel<(ulong T, int N, ulong Picks, int Count, ulong Tiles)> GatherTiles = new(RegularizeSource, "gather_tiles");
    public static readonly CudaKernel<(ulong Q, int N, ulong Suh, ulong Svh, ulong Hf, int OutFeatures, int InFeatures)> ReconstructHf = new(RegularizeSource, "reconstruct_hf");

    // viterbi.cu: the tail-biting search, compiled once per K (Trellis/CudaTileEncoder).
    public static readonly CudaKernel<(ulong Targets, int Tiles, ulong Table, ulong States, ulong History)> ViterbiTiles = new(ViterbiSource, "viterbi_tiles");

    /// <summary>Every declaration above, in order.</summary>
    public static IReadOnlyList<CudaKernel> All { get; } =
    [
        AddLowerStripe, AddStripe, GramMean, MirrorLower, SubtractFrom, SubtractInPlace, FlagNonzero, WidenTopLeft, Narrow, RowDots, AddToDiagonal, DriftTargetTransposed, DriftShiftRows, ProjectedTargetTransposed,
        NormRows, Rope, CausalSoftmax, AddInPlace, CopyHeadColumns, AddBias, SwiGlu, GeluTanhGate, ClampedSwiGlu, FlagNonfinite, ScaleInPlace, SoftCap, TokenDiff,
        CausalAttention,
        ZeroFill, RouteTopK, ExpertLists, GatherRows, ScatterAddRows,
        LdlqBlockTarget, LdlqGatherTiles, LdlqErrorRows, LdlqDecode, LdlDampedCopy, LdlStrictBlockFactor,
        HadamardColumns, HadamardRows, CopyDiagonal,
        ColumnSquares, RowSquares, ScaleColumns, DivideRows, TileMeanSquares, GatherTiles, ReconstructHf,
        ViterbiTiles,
    ];

    /// <summary>Kernels in the sources that nothing launches, each with the reason it stays (none today).</summary>
    public static IReadOnlyDictionary<string, string> Unused { get; } = new Dictionary<string, string>();
}
