using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Native;
using Converter.Models;
using Converter.Models.Modules;

namespace Converter.Cuda.Models;

/// <summary>
/// A decoder block's forward (<see cref="DecoderBlock.Forward"/>) with every activation on the GPU: the hidden states
/// go up once and the block output comes down once, the products run on cuBLAS (weights cached on the device by
/// <see cref="CudaDenseAlgebra"/>), norms, RoPE, SwiGLU and residuals in Kernels/forward.cu, attention as two
/// batched SGEMMs around a causal softmax. A Hessian observer's sums are added on the device; other observers get
/// host copies of the group inputs. On the host this was ~15 s per llama-3-8b layer pass of 65,536 tokens for ~1 s of
/// GEMMs (docs/benchmarks.md, "GPU").
/// </summary>
public sealed class CudaDecoderForward : IDecoderBlockForward, IDisposable
{
    private const int Threads = 256;
    private const int MaxBlocks = 4096;

    private readonly CudaDenseAlgebra _algebra;
    private readonly CudaContext _context;
    private CudaModule? _kernels;
    private RotaryTable? _rotaryOnDevice;
    private DeviceBuffer<float>? _cos, _sin;
    private DeviceBuffer<ulong>? _pointers;
    private DeviceBuffer<int>? _flag;

    public CudaDecoderForward(CudaDenseAlgebra algebra)
    {
        _algebra = algebra;
        _context = algebra.Context;
    }

    public Matrix Forward(DecoderBlock block, SequenceBatch batch, Matrix x, ILinearInputObserver? observer)
    {
        var spec = block.Spec;
        int m = x.Rows, hidden = spec.HiddenSize;
        if (x.Cols != hidden || m != batch.Rows * batch.Tokens)
            throw new ArgumentException($"{block.Name}: hidden states {x.ShapeText} are not ({batch.Rows}·{batch.Tokens}, {hidden})", nameof(x));
        var attention = block.Attention;
        var mlp = block.Mlp;
        var table = attention.Rotary.TableFor(batch.Tokens);
        var output = Matrix.Uninitialized(m, hidden);
        lock (_algebra.Gate)
        {
            var residual = Buffer("residual", (long)m * hidden);
            var normed = Buffer("normed", (long)m * hidden);
            residual.CopyFrom(x.Data);

            // Attention half: h = x + o(attn(rope(q), rope(k), v)) on norm₁(x).
            RmsNorm(residual.Pointer, Upload("input_norm", block.InputNorm.Span), spec.RmsNormEps, normed.Pointer, m, hidden);
            Observe(observer, block.LinearGroups[0], normed, m);
            var q = Buffer("q", (long)m * spec.QueryWidth);
            var k = Buffer("k", (long)m * spec.KeyValueWidth);
            var v = Buffer("v", (long)m * spec.KeyValueWidth);
            Linear(attention.Q, normed.Pointer, q.Pointer, m);
            Linear(attention.K, normed.Pointer, k.Pointer, m);
            Linear(attention.V, normed.Pointer, v.Pointer, m);
            if (spec.QkNorm)
            {
                // Qwen3 normalizes each head vector before RoPE.
                RmsNorm(q.Pointer, Upload("qnorm", attention.QNorm), spec.RmsNormEps, q.Pointer, m * spec.Heads, spec.HeadDim);
                RmsNorm(k.Pointer, Upload("knorm", attention.KNorm), spec.RmsNormEps, k.Pointer, m * spec.KvHeads, spec.HeadDim);
            }
            UploadRotary(table);
            Rope(q.Pointer, m, batch.Tokens, spec.Heads, spec.HeadDim);
            Rope(k.Pointer, m, batch.Tokens, spec.KvHeads, spec.HeadDim);
            var attended = Buffer("attended", (long)m * spec.QueryWidth);
            Attend(q.Pointer, k.Pointer, v.Pointer, attended.Pointer, batch.Rows, batch.Tokens, spec);
            Observe(observer, block.LinearGroups[1], attended, m);
            var projected = Buffer("projected", (long)m * hidden);
            Linear(attention.O, attended.Pointer, projected.Pointer, m);
            AddInPlace(residual.Pointer, projected.Pointer, (long)m * hidden);

            // MLP half: out = h + down(SiLU(gate(n)) ⊙ up(n)), n = norm₂(h).
            RmsNorm(residual.Pointer, Upload("post_attention_norm", block.PostAttentionNorm.Span), spec.RmsNormEps, normed.Pointer, m, hidden);
            Observe(observer, block.LinearGroups[2], normed, m);
            var gate = Buffer("gate", (long)m * spec.IntermediateSize);
            var up = Buffer("up", (long)m * spec.IntermediateSize);
            Linear(mlp.Gate, normed.Pointer, gate.Pointer, m);
            Linear(mlp.Up, normed.Pointer, up.Pointer, m);
            Kernels.Launch("swiglu", Grid((long)m * spec.IntermediateSize), Threads, 0, [gate.Pointer, up.Pointer, Count((long)m * spec.IntermediateSize)]);
            Observe(observer, block.LinearGroups[3], gate, m);
            Linear(mlp.Down, gate.Pointer, projected.Pointer, m);
            AddInPlace(residual.Pointer, projected.Pointer, (long)m * hidden);
            residual.CopyTo(output.Data);
        }
        return output;
    }

    /// <summary>y (m, out) = x·Wᵀ + b for a loaded linear layer, its weight cached on the device.</summary>
    private void Linear(Linear linear, ulong x, ulong y, int m)
    {
        int n = linear.OutFeatures;
        _algebra.LinearOnDevice(x, _algebra.CachedWeight(linear.Weight.Data).Pointer, y, m, n, linear.InFeatures);
        if (linear.Bias is { } bias)
            Kernels.Launch("add_bias", Grid((long)m * n), Threads, 0, [y, Upload("bias." + linear.Name[(linear.Name.LastIndexOf('.') + 1)..], bias), n, Count((long)m * n)]);
    }

    /// <summary>
    /// Per row r and query head h (kv head g = h / (heads / kvHeads), HF's repeat_kv): S = Q_h·K_gᵀ (tokens ×
    /// tokens), causal softmax of S/√d, O_h = P·V_g written into the head's columns of the output.
    /// </summary>
    private void Attend(ulong q, ulong k, ulong v, ulong output, int rows, int tokens, TransformerSpec spec)
    {
        int heads = spec.Heads, kvHeads = spec.KvHeads, d = spec.HeadDim;
        int queryWidth = heads * d, keyWidth = kvHeads * d, group = heads / kvHeads;
        int batch = rows * heads;
        var scores = Buffer("scores", (long)batch * tokens * tokens);
        // Operand pointers of the two batched products: Q_h, K_g, V_g, S and O_h per (row, head).
        var pointers = new ulong[5 * batch];
        for (int r = 0; r < rows; r++)
        {
            ulong token0 = (ulong)r * (ulong)tokens;
            for (int h = 0; h < heads; h++)
            {
                int i = r * heads + h, g = h / group;
                ulong queryOffset = (token0 * (ulong)queryWidth + (ulong)(h * d)) * sizeof(float);
                ulong keyOffset = (token0 * (ulong)keyWidth + (ulong)(g * d)) * sizeof(float);
                pointers[i] = q + queryOffset;
                pointers[batch + i] = k + keyOffset;
                pointers[2 * batch + i] = v + keyOffset;
                pointers[3 * batch + i] = scores.Pointer + (ulong)i * (ulong)tokens * (ulong)tokens * sizeof(float);
                pointers[4 * batch + i] = output + queryOffset;
            }
        }
        if (_pointers is null || _pointers.Count < pointers.Length)
        {
            _pointers?.Dispose();
            _pointers = _context.Allocate<ulong>(pointers.Length);
        }
        _pointers.CopyFrom(pointers);
        ulong Array(int slot) => _pointers.Pointer + (ulong)(slot * batch) * sizeof(ulong);

        // Row-major S (tokens×tokens) = Q_h·K_gᵀ, mapped onto column-major cuBLAS as in Linear (K_g plays W).
        _algebra.SgemmBatched(CudaMathLibraries.OpT, CudaMathLibraries.OpN, tokens, tokens, d, 1f, Array(1), keyWidth, Array(0), queryWidth, Array(3), tokens, batch);
        long scoreRows = (long)batch * tokens;
        int warpsPerBlock = Threads / 32;
        Kernels.Launch("causal_softmax", (uint)((scoreRows + warpsPerBlock - 1) / warpsPerBlock), Threads, 0,
            [scores.Pointer, tokens, KernelArgument.Of(1f / MathF.Sqrt(d)), spec.SlidingWindow ?? int.MaxValue, Count(scoreRows)]);
        // Row-major O_h (tokens×d, ld queryWidth) = P·V_g is column-major O_hᵀ = V_gᵀ·Pᵀ (as MultiplyAdd maps C = A·B).
        _algebra.SgemmBatched(CudaMathLibraries.OpN, CudaMathLibraries.OpN, d, tokens, tokens, 1f, Array(2), keyWidth, Array(3), tokens, Array(4), queryWidth, batch);
    }

    /// <summary>Feeds a group's input to the observer: on the device for a Hessian observer whose rows are all finite, else as a host copy.</summary>
    private void Observe(ILinearInputObserver? observer, LinearGroup group, DeviceBuffer<float> input, int m)
    {
        if (observer is null)
            return;
        long count = (long)m * group.InFeatures;
        if (observer is IHessianObserver hessians && AllFinite(input.Pointer, count))
        {
            var accumulator = hessians.AccumulatorFor(group);
            bool added = false;
            accumulator.AddVerified(m, gram => added = _algebra.TryAddGramOnDevice(gram, input.Pointer, m));
            if (added)
                return;
            throw new InvalidOperationException($"{group}: the Hessian accumulator is not on {_algebra.Device}; a GPU forward needs the GPU's accumulators");
        }
        // Rows with NaN/Inf (dropped and counted by the host accumulator) or a general observer: copy to the host.
        var host = Matrix.Uninitialized(m, group.InFeatures);
        input.CopyTo(host.Data);
        observer.OnLinearInput(group, host);
    }

    private bool AllFinite(ulong x, long count)
    {
        _flag ??= _context.Allocate<int>(1);
        _flag.Fill(0);
        Kernels.Launch("flag_nonfinite", Grid(count), Threads, 0, [x, Count(count), _flag.Pointer]);
        Span<int> flag = stackalloc int[1];
        _flag.CopyTo(flag);
        return flag[0] == 0;
    }

    private void RmsNorm(ulong x, ulong weight, float eps, ulong y, int rows, int width) =>
        Kernels.Launch("rms_norm", (uint)rows, Threads, 0, [x, weight, KernelArgument.Of(eps), y, width]);

    private void Rope(ulong x, int m, int tokens, int heads, int headDim)
    {
        long pairs = (long)m * heads * (headDim / 2);
        Kernels.Launch("rope", Grid(pairs), Threads, 0, [x, _cos!.Pointer, _sin!.Pointer, tokens, heads, headDim, Count(pairs)]);
    }

    private void AddInPlace(ulong y, ulong x, long n) => Kernels.Launch("add_in_place", Grid(n), Threads, 0, [y, x, Count(n)]);

    /// <summary>The rotary table on the device; the model's table only grows, so it is uploaded when it changes.</summary>
    private void UploadRotary(RotaryTable table)
    {
        if (ReferenceEquals(table, _rotaryOnDevice))
            return;
        _cos?.Dispose();
        _sin?.Dispose();
        _cos = _context.Allocate<float>(table.AllCos.Length);
        _sin = _context.Allocate<float>(table.AllSin.Length);
        _cos.CopyFrom(table.AllCos);
        _sin.CopyFrom(table.AllSin);
        _rotaryOnDevice = table;
    }

    /// <summary>
    /// Copies a small parameter vector (norm weights, biases) into its role's own buffer: one buffer per role, so no
    /// upload overwrites a vector that a kernel queued earlier in the block still reads.
    /// </summary>
    private ulong Upload(string role, ReadOnlySpan<float> values)
    {
        var buffer = Buffer("param." + role, values.Length);
        buffer.CopyFrom(values);
        return buffer.Pointer;
    }

    private ulong Upload(string role, float[]? values) =>
        Upload(role, (values ?? throw new InvalidOperationException($"{role} weights are not loaded")).AsSpan());

    /// <summary>The algebra's grow-only scratch buffer of a role of the forward, reused across blocks and chunks.</summary>
    private DeviceBuffer<float> Buffer(string role, long count) => _algebra.Scratch("forward." + role, count);

    private CudaModule Kernels => _kernels ??= _context.Module("forward.cu", new Dictionary<string, string>());

    private static uint Grid(long n) => (uint)Math.Clamp((n + Threads - 1) / Threads, 1, MaxBlocks);

    private static KernelArgument Count(long n) => new((ulong)n);

    public void Dispose()
    {
        lock (_algebra.Gate)
        {
            _cos?.Dispose();
            _sin?.Dispose();
            _pointers?.Dispose();
            _flag?.Dispose();
        }
    }
}
