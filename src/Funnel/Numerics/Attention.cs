using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Numerics;

/// <summary>
/// Multi-head self-attention for unpadded sequences: the encoder runs every sequence of a batch
/// at its own length, so no padding position is ever computed or masked.
/// </summary>
internal static class Attention
{
    /// <summary>
    /// <paramref name="qkv"/> is [seqLen × 3·hidden] with Q, K, V side by side in each row (as the
    /// fused QKV projection writes it); <paramref name="output"/> is [seqLen × hidden], heads
    /// concatenated. softmax(Q·Kᵀ/√headDim)·V per head, heads split across up to
    /// <paramref name="maxThreads"/> threads.
    /// </summary>
    public static void SelfAttention(ReadOnlySpan<float> qkv, int seqLen, int heads, int headDim, Span<float> output, int maxThreads = 1)
        => SelfAttention(qkv, new ReadOnlySpan<int>(in seqLen), heads, headDim, output, maxThreads);

    /// <summary>
    /// A whole unpadded batch: the sequences' rows are concatenated in <paramref name="qkv"/>
    /// ([Σ lengths × 3·hidden]) and <paramref name="output"/> ([Σ lengths × hidden]); each
    /// sequence attends only to itself. The (sequence, head) pairs are shared among up to
    /// <paramref name="maxThreads"/> threads.
    /// </summary>
    public static unsafe void SelfAttention(ReadOnlySpan<float> qkv, ReadOnlySpan<int> sequenceLengths, int heads, int headDim,
        Span<float> output, int maxThreads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxThreads);
        int hidden = heads * headDim, tokens = 0;
        foreach (int length in sequenceLengths)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(length, nameof(sequenceLengths));
            tokens += length;
        }
        if (qkv.Length < (long)tokens * 3 * hidden) throw new ArgumentException($"qkv holds {qkv.Length} values, expected {tokens}×{3 * hidden}", nameof(qkv));
        if (output.Length < (long)tokens * hidden) throw new ArgumentException($"output holds {output.Length} values, expected {tokens}×{hidden}", nameof(output));
        if (tokens == 0) return;
        if (!Gemm.IsAccelerated)
        {
            for (int s = 0, t0 = 0; s < sequenceLengths.Length; t0 += sequenceLengths[s++])
                SelfAttentionReference(qkv[(t0 * 3 * hidden)..], sequenceLengths[s], heads, headDim, output[(t0 * hidden)..]);
            return;
        }
        int[] starts = ArrayPool<int>.Shared.Rent(sequenceLengths.Length + 1);
        try
        {
            starts[0] = 0;
            for (int s = 0; s < sequenceLengths.Length; s++) starts[s + 1] = starts[s] + sequenceLengths[s];
            fixed (float* pq = qkv, po = output)
            fixed (int* ps = starts)
                WorkSplit.Run(new AttentionJob(pq, po, ps, heads, headDim), sequenceLengths.Length * heads, maxThreads);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(starts);
        }
    }

    /// <summary>Query rows whose scores are computed, exponentiated and applied to V together.</summary>
    private const int QueryBlock = 16;

    /// <summary>One item is one (sequence, head) pair; it rents scratch for the packed K and V, a
    /// block of score rows and the softmax sums.</summary>
    private readonly unsafe struct AttentionJob(float* qkv, float* output, int* starts, int heads, int headDim) : IWorkItems
    {
        public void Run(int item)
        {
            int s = item / heads, head = item % heads;
            int start = starts[s], length = starts[s + 1] - start;
            if (length == 0) return;
            int keysSize = PackedMatrix.PanelCount(length) * PackedMatrix.PanelWidth * headDim;
            int valuesSize = PackedMatrix.PanelCount(headDim) * PackedMatrix.PanelWidth * length;
            int scoresSize = Math.Min(length, QueryBlock) * length;
            float[] scratch = ArrayPool<float>.Shared.Rent(keysSize + valuesSize + scoresSize + length);
            fixed (float* ps = scratch)
                Head(start, length, head, ps, ps + keysSize, ps + keysSize + valuesSize, ps + keysSize + valuesSize + scoresSize);
            ArrayPool<float>.Shared.Return(scratch);
        }

        private void Head(int start, int length, int head, float* keys, float* values, float* scores, float* inverseSums)
        {
            int hidden = heads * headDim, stride = 3 * hidden;
            float* q = qkv + (nint)start * stride + head * headDim;
            // Kᵀ as a packed weight (one "output feature" per key), V as K×N panels: both products
            // then run on the GEMM micro-kernel.
            PackKeys(q + hidden, length, headDim, stride, keys);
            PackRows(q + 2 * hidden, length, headDim, stride, values);
            // A block of query rows at a time, so its scores stay in L1 from Q·Kᵀ through softmax to P·V.
            float scale = 1f / MathF.Sqrt(headDim);
            float* o = output + (nint)start * hidden + head * headDim;
            for (int i0 = 0; i0 < length; i0 += QueryBlock)
            {
                int i1 = Math.Min(length, i0 + QueryBlock);
                Gemm.Multiply(q, stride, i0, i1, headDim, keys, length, 0, PackedMatrix.PanelCount(length), GemmOutput.Plain(scores - (nint)i0 * length, length));
                for (int i = i0; i < i1; i++) inverseSums[i] = 1f / ExpInPlace(scores + (nint)(i - i0) * length, length, scale);
                Gemm.Multiply(scores - (nint)i0 * length, length, i0, i1, length, values, headDim, 0, PackedMatrix.PanelCount(headDim), GemmOutput.Plain(o, hidden));
            }
            // Normalising the headDim outputs of a row is cheaper than normalising its length probabilities.
            for (int i = 0; i < length; i++) Scale(o + (nint)i * hidden, headDim, inverseSums[i]);
        }
    }

    /// <summary>Packs the keys K[rows × width] (rows <paramref name="stride"/> apart) as a
    /// <see cref="PackedMatrix"/> of rows output features: panels of 32 keys, each key's d-th value
    /// side by side. AVX2 gathers a column of 8 keys at once; the pad of the last panel repeats
    /// the last key, whose products land in columns that are never stored.</summary>
    internal static unsafe void PackKeys(float* k, int rows, int width, int stride, float* packed)
    {
        const int W = PackedMatrix.PanelWidth;
        int panels = PackedMatrix.PanelCount(rows);
        if (Avx2.IsSupported)
        {
            Vector256<int> last = Vector256.Create(rows - 1), lanes = Vector256<int>.Indices;
            for (int panel = 0; panel < panels; panel++)
            {
                float* dst = packed + (nint)panel * width * W;
                Vector256<int> i0 = Vector256.Min(lanes + Vector256.Create(panel * W), last) * stride;
                Vector256<int> i1 = Vector256.Min(lanes + Vector256.Create(panel * W + 8), last) * stride;
                Vector256<int> i2 = Vector256.Min(lanes + Vector256.Create(panel * W + 16), last) * stride;
                Vector256<int> i3 = Vector256.Min(lanes + Vector256.Create(panel * W + 24), last) * stride;
                for (int d = 0; d < width; d++, dst += W)
                {
                    Avx2.GatherVector256(k + d, i0, 4).Store(dst);
                    Avx2.GatherVector256(k + d, i1, 4).Store(dst + 8);
                    Avx2.GatherVector256(k + d, i2, 4).Store(dst + 16);
                    Avx2.GatherVector256(k + d, i3, 4).Store(dst + 24);
                }
            }
            return;
        }
        for (int panel = 0; panel < panels; panel++)
        {
            float* dst = packed + (nint)panel * width * W;
            for (int c = 0; c < W; c++)
            {
                float* key = k + (nint)Math.Min(panel * W + c, rows - 1) * stride;
                for (int d = 0; d < width; d++) dst[d * W + c] = key[d];
            }
        }
    }

    /// <summary>Packs B[k × n] given row-major (rows <paramref name="stride"/> apart) into panels of
    /// 32 columns, zero-padding the last: the layout of <see cref="PackedMatrix"/> for a B that is
    /// already K-major (the values).</summary>
    internal static unsafe void PackRows(float* b, int k, int n, int stride, float* packed)
    {
        const int W = PackedMatrix.PanelWidth;
        int panels = PackedMatrix.PanelCount(n);
        for (int panel = 0; panel < panels; panel++)
        {
            int col = panel * W, cols = Math.Min(W, n - col);
            float* dst = packed + (nint)panel * k * W, src = b + col;
            if (cols == W && Vector512.IsHardwareAccelerated)
            {
                for (int p = 0; p < k; p++, dst += W, src += stride)
                {
                    Vector512.Load(src).Store(dst);
                    Vector512.Load(src + 16).Store(dst + 16);
                }
                continue;
            }
            for (int p = 0; p < k; p++, dst += W, src += stride)
            {
                new ReadOnlySpan<float>(src, cols).CopyTo(new Span<float>(dst, W));
                new Span<float>(dst + cols, W - cols).Clear();
            }
        }
    }

    /// <summary>In place, softmax(scale·row), shifted by the row maximum for stability.</summary>
    internal static unsafe void Softmax(Span<float> row, float scale)
    {
        fixed (float* p = row) Scale(p, row.Length, 1f / ExpInPlace(p, row.Length, scale));
    }

    /// <summary>In place, exp(scale·(row − max row)); returns the sum, the softmax denominator.
    /// Called once per score row, so the vector paths are inline rather than library calls.</summary>
    internal static unsafe float ExpInPlace(float* row, int length, float scale)
    {
        int j = 0;
        float max = float.NegativeInfinity;
        if (Avx512F.IsSupported && length >= Vector512<float>.Count)
        {
            // The raw vmaxps: Vector512.Max's NaN-propagating form adds two dependent fixups a step.
            Vector512<float> m = Vector512.Load(row);
            for (j = Vector512<float>.Count; j <= length - Vector512<float>.Count; j += Vector512<float>.Count) m = Avx512F.Max(m, Vector512.Load(row + j));
            Vector256<float> m8 = Avx.Max(m.GetLower(), m.GetUpper());
            Vector128<float> m4 = Sse.Max(m8.GetLower(), m8.GetUpper());
            m4 = Sse.Max(m4, Sse.Shuffle(m4, m4, 0b_01_00_11_10));
            max = Sse.MaxScalar(m4, Sse.Shuffle(m4, m4, 0b_10_11_00_01)).ToScalar();
        }
        for (; j < length; j++) max = row[j] > max ? row[j] : max;
        return VectorMath.ExpScaledSum(new Span<float>(row, length), scale, max * scale);
    }

    internal static unsafe void Scale(float* values, int length, float factor)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> f = Vector512.Create(factor);
            for (; j <= length - Vector512<float>.Count; j += Vector512<float>.Count) (Vector512.Load(values + j) * f).Store(values + j);
        }
        for (; j < length; j++) values[j] *= factor;
    }

    internal static void SelfAttentionReference(ReadOnlySpan<float> qkv, int seqLen, int heads, int headDim, Span<float> output)
    {
        int hidden = heads * headDim, stride = 3 * hidden;
        double scale = 1.0 / Math.Sqrt(headDim);
        var scores = new double[seqLen];
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < seqLen; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < seqLen; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < headDim; d++)
                        dot += qkv[i * stride + h * headDim + d] * qkv[j * stride + hidden + h * headDim + d];
                    scores[j] = dot * scale;
                    max = Math.Max(max, scores[j]);
                }
                double sum = 0;
                for (int j = 0; j < seqLen; j++) { scores[j] = Math.Exp(scores[j] - max); sum += scores[j]; }
                for (int d = 0; d < headDim; d++)
                {
                    double acc = 0;
                    for (int j = 0; j < seqLen; j++) acc += scores[j] * qkv[j * stride + 2 * hidden + h * headDim + d];
                    output[i * hidden + h * headDim + d] = (float)(acc / sum);
                }
            }
        }
    }
}
