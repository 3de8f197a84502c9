using System.Buffers;
using System.Runtime.CompilerServices;
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
                ExpRows(scores, length, i1 - i0, length, scale, inverseSums + i0);
                Gemm.Multiply(scores - (nint)i0 * length, length, i0, i1, length, values, headDim, 0, PackedMatrix.PanelCount(headDim), GemmOutput.Plain(o, hidden));
            }
            // Normalising the headDim outputs of a row is cheaper than normalising its length probabilities.
            for (int i = 0; i < length; i++) Scale(o + (nint)i * hidden, headDim, inverseSums[i]);
        }
    }

    /// <summary>Packs the keys K[rows × width] (rows <paramref name="stride"/> apart) as a
    /// <see cref="PackedMatrix"/> of rows output features: panels of 32 keys, each key's d-th value
    /// side by side. Blocks of 8 keys × 8 values are transposed in registers (AVX2 gathers of a
    /// column took about 12 cycles each); the pad of the last panel repeats the last key, whose
    /// products land in columns that are never stored.</summary>
    internal static unsafe void PackKeys(float* k, int rows, int width, int stride, float* packed)
    {
        const int W = PackedMatrix.PanelWidth;
        int panels = PackedMatrix.PanelCount(rows), vectorWidth = Avx.IsSupported ? width / 8 * 8 : 0;
        float** key = stackalloc float*[8];
        for (int panel = 0; panel < panels; panel++)
        {
            float* dst = packed + (nint)panel * width * W;
            for (int c0 = 0; c0 < W; c0 += 8)
            {
                for (int r = 0; r < 8; r++) key[r] = k + (nint)Math.Min(panel * W + c0 + r, rows - 1) * stride;
                for (int d = 0; d < vectorWidth; d += 8) Transpose8x8(key, d, dst + (nint)d * W + c0, W);
                for (int d = vectorWidth; d < width; d++)
                    for (int r = 0; r < 8; r++) dst[d * W + c0 + r] = key[r][d];
            }
        }
    }

    /// <summary>Values <paramref name="col"/>…+7 of 8 rows, written transposed: row t of <paramref name="dst"/>
    /// (<paramref name="ldd"/> apart) holds value col + t of each row. Unpacks pair rows, shuffles make
    /// 4-row columns within each 128-bit lane, and lane permutes join the halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Transpose8x8(float** rows, int col, float* dst, int ldd)
    {
        Vector256<float> r0 = Avx.LoadVector256(rows[0] + col), r1 = Avx.LoadVector256(rows[1] + col),
            r2 = Avx.LoadVector256(rows[2] + col), r3 = Avx.LoadVector256(rows[3] + col),
            r4 = Avx.LoadVector256(rows[4] + col), r5 = Avx.LoadVector256(rows[5] + col),
            r6 = Avx.LoadVector256(rows[6] + col), r7 = Avx.LoadVector256(rows[7] + col);
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3),
            t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE),
            u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(u0, u4, 0x20).Store(dst);
        Avx.Permute2x128(u1, u5, 0x20).Store(dst + ldd);
        Avx.Permute2x128(u2, u6, 0x20).Store(dst + 2 * ldd);
        Avx.Permute2x128(u3, u7, 0x20).Store(dst + 3 * ldd);
        Avx.Permute2x128(u0, u4, 0x31).Store(dst + 4 * ldd);
        Avx.Permute2x128(u1, u5, 0x31).Store(dst + 5 * ldd);
        Avx.Permute2x128(u2, u6, 0x31).Store(dst + 6 * ldd);
        Avx.Permute2x128(u3, u7, 0x31).Store(dst + 7 * ldd);
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
            max = HorizontalMax(m);
        }
        for (; j < length; j++) max = row[j] > max ? row[j] : max;
        return VectorMath.ExpScaledSum(new Span<float>(row, length), scale, max * scale);
    }

    /// <summary>
    /// <see cref="ExpInPlace"/> on <paramref name="count"/> rows <paramref name="stride"/> apart, writing each row's
    /// 1/sum. One row is a chain of dependent steps (the running max, its reduction, the exp loop, the sum) that is
    /// short enough at these lengths for latency, not throughput, to set its pace; four rows side by side give the
    /// core four independent chains. Each row's values and sum are those of <see cref="ExpInPlace"/>, bit for bit.
    /// </summary>
    internal static unsafe void ExpRows(float* rows, int stride, int count, int length, float scale, float* inverseSums)
    {
        int groups = Avx512F.IsSupported && length >= Vector512<float>.Count ? count / 4 : 0;
        // Each group's maxima are found while the group before it exponentiates, so no exp loop waits on its own
        // max chain and reduction.
        float* maxima = stackalloc float[8];
        if (groups > 0) FourRowMaxima(rows, stride, length, maxima);
        for (int g = 0; g < groups; g++)
        {
            float* group = rows + (nint)4 * g * stride, current = maxima + 4 * (g & 1);
            if (g + 1 < groups) FourRowMaxima(group + (nint)4 * stride, stride, length, maxima + 4 * ((g + 1) & 1));
            ExpFourRows(group, stride, length, scale, current, inverseSums + 4 * g);
        }
        for (int r = 4 * groups; r < count; r++) inverseSums[r] = 1f / ExpInPlace(rows + (nint)r * stride, length, scale);
    }

    private static unsafe void FourRowMaxima(float* p0, int stride, int length, float* maxima)
    {
        const int V = 16;
        float* p1 = p0 + stride, p2 = p1 + stride, p3 = p2 + stride;
        Vector512<float> m0 = Vector512.Load(p0), m1 = Vector512.Load(p1), m2 = Vector512.Load(p2), m3 = Vector512.Load(p3);
        int j = V;
        for (; j <= length - V; j += V)
        {
            m0 = Avx512F.Max(m0, Vector512.Load(p0 + j));
            m1 = Avx512F.Max(m1, Vector512.Load(p1 + j));
            m2 = Avx512F.Max(m2, Vector512.Load(p2 + j));
            m3 = Avx512F.Max(m3, Vector512.Load(p3 + j));
        }
        float max0 = HorizontalMax(m0), max1 = HorizontalMax(m1), max2 = HorizontalMax(m2), max3 = HorizontalMax(m3);
        for (; j < length; j++)
        {
            max0 = p0[j] > max0 ? p0[j] : max0;
            max1 = p1[j] > max1 ? p1[j] : max1;
            max2 = p2[j] > max2 ? p2[j] : max2;
            max3 = p3[j] > max3 ? p3[j] : max3;
        }
        maxima[0] = max0;
        maxima[1] = max1;
        maxima[2] = max2;
        maxima[3] = max3;
    }

    /// <summary>ExpScaledSum's arithmetic, in its order, for four rows at once.</summary>
    private static unsafe void ExpFourRows(float* p0, int stride, int length, float scale, float* maxima, float* inverseSums)
    {
        const int V = 16;
        float* p1 = p0 + stride, p2 = p1 + stride, p3 = p2 + stride;
        var (factor, o0) = VectorMath.Exp2Terms(scale, maxima[0] * scale);
        float o1 = VectorMath.Exp2Terms(scale, maxima[1] * scale).Offset, o2 = VectorMath.Exp2Terms(scale, maxima[2] * scale).Offset,
            o3 = VectorMath.Exp2Terms(scale, maxima[3] * scale).Offset;
        Vector512<float> c = Vector512.Create(factor);
        Vector512<float> s0 = Vector512.Create(o0), s1 = Vector512.Create(o1), s2 = Vector512.Create(o2), s3 = Vector512.Create(o3);
        Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
        int j = 0;
        for (; j <= length - V; j += V)
        {
            Vector512<float> e0 = VectorMath.Exp2(Vector512.FusedMultiplyAdd(Vector512.Load(p0 + j), c, s0));
            Vector512<float> e1 = VectorMath.Exp2(Vector512.FusedMultiplyAdd(Vector512.Load(p1 + j), c, s1));
            Vector512<float> e2 = VectorMath.Exp2(Vector512.FusedMultiplyAdd(Vector512.Load(p2 + j), c, s2));
            Vector512<float> e3 = VectorMath.Exp2(Vector512.FusedMultiplyAdd(Vector512.Load(p3 + j), c, s3));
            e0.Store(p0 + j);
            e1.Store(p1 + j);
            e2.Store(p2 + j);
            e3.Store(p3 + j);
            a0 += e0;
            a1 += e1;
            a2 += e2;
            a3 += e3;
        }
        inverseSums[0] = 1f / VectorMath.ExpScaledTail(new Span<float>(p0, length), j, factor, o0, VectorMath.HorizontalSum(a0));
        inverseSums[1] = 1f / VectorMath.ExpScaledTail(new Span<float>(p1, length), j, factor, o1, VectorMath.HorizontalSum(a1));
        inverseSums[2] = 1f / VectorMath.ExpScaledTail(new Span<float>(p2, length), j, factor, o2, VectorMath.HorizontalSum(a2));
        inverseSums[3] = 1f / VectorMath.ExpScaledTail(new Span<float>(p3, length), j, factor, o3, VectorMath.HorizontalSum(a3));
    }

    private static float HorizontalMax(Vector512<float> m)
    {
        Vector256<float> m8 = Avx.Max(m.GetLower(), m.GetUpper());
        Vector128<float> m4 = Sse.Max(m8.GetLower(), m8.GetUpper());
        m4 = Sse.Max(m4, Sse.Shuffle(m4, m4, 0b_01_00_11_10));
        return Sse.MaxScalar(m4, Sse.Shuffle(m4, m4, 0b_10_11_00_01)).ToScalar();
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
