using System.Buffers;
using System.Runtime.Intrinsics;

namespace Funnel.Inference.Kernels;

/// <summary>
/// Multi-head self-attention for unpadded sequences: the encoder runs every sequence of a batch
/// at its own length, so no padding position is ever computed or masked.
/// </summary>
public static class Attention
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
        int hidden = heads * headDim, tokens = 0, longest = 0;
        foreach (int length in sequenceLengths)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(length, nameof(sequenceLengths));
            tokens += length;
            longest = Math.Max(longest, length);
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
            int items = sequenceLengths.Length * heads;
            int next = 0;
            fixed (float* pq = qkv, po = output)
            fixed (int* ps = starts)
            {
                var job = new AttentionJob(pq, po, ps, sequenceLengths.Length, heads, headDim, longest, &next);
                WorkSplit.Run(job, Math.Min(maxThreads, items));
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(starts);
        }
    }

    /// <summary>Workers take (sequence, head) items from a shared counter, so long and short
    /// sequences balance out; each owns scratch for the packed K and V and the score matrix.</summary>
    private readonly unsafe struct AttentionJob(float* qkv, float* output, int* starts, int sequences, int heads, int headDim,
        int longest, int* next) : IPartitionedJob
    {
        public void Run(int part, int parts)
        {
            int keyPanels = PackedMatrix.PanelCount(longest), valuePanels = PackedMatrix.PanelCount(headDim);
            int keysSize = keyPanels * PackedMatrix.PanelWidth * headDim;
            int valuesSize = valuePanels * PackedMatrix.PanelWidth * longest;
            float[] scratch = ArrayPool<float>.Shared.Rent(keysSize + valuesSize + longest * longest);
            try
            {
                fixed (float* ps = scratch)
                {
                    for (int item = Interlocked.Increment(ref *next) - 1; item < sequences * heads; item = Interlocked.Increment(ref *next) - 1)
                    {
                        int s = item / heads, h = item % heads;
                        Head(starts[s], starts[s + 1] - starts[s], h, ps, ps + keysSize, ps + keysSize + valuesSize);
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        }

        private void Head(int start, int length, int head, float* keys, float* values, float* scores)
        {
            if (length == 0) return;
            int hidden = heads * headDim, stride = 3 * hidden;
            float* q = qkv + (nint)start * stride + head * headDim;
            var rows = new ReadOnlySpan<float>(q, (length - 1) * stride + 3 * hidden - head * headDim);
            // Kᵀ as a packed weight (one "output feature" per key), V as K×N panels: both products
            // then run on the GEMM micro-kernel.
            PackedMatrix.PackInto(rows[hidden..], length, headDim, stride, new Span<float>(keys, PackedMatrix.PanelCount(length) * PackedMatrix.PanelWidth * headDim));
            PackRows(q + 2 * hidden, length, headDim, stride, values);
            Gemm.Multiply(q, stride, 0, length, headDim, keys, length, 0, PackedMatrix.PanelCount(length), GemmOutput.Plain(scores, length));
            float scale = 1f / MathF.Sqrt(headDim);
            for (int i = 0; i < length; i++) Softmax(new Span<float>(scores + (nint)i * length, length), scale);
            Gemm.Multiply(scores, length, 0, length, length, values, headDim, 0, PackedMatrix.PanelCount(headDim),
                GemmOutput.Plain(output + (nint)start * hidden + head * headDim, hidden));
        }
    }

    /// <summary>Packs B[k × n] given row-major (rows <paramref name="stride"/> apart) into panels of
    /// 32 columns, zero-padding the last: the layout of <see cref="PackedMatrix"/> for a B that is
    /// already K-major.</summary>
    private static unsafe void PackRows(float* b, int k, int n, int stride, float* packed)
    {
        int panels = PackedMatrix.PanelCount(n);
        for (int panel = 0; panel < panels; panel++)
        {
            int col = panel * PackedMatrix.PanelWidth, cols = Math.Min(PackedMatrix.PanelWidth, n - col);
            float* dst = packed + (nint)panel * k * PackedMatrix.PanelWidth;
            for (int p = 0; p < k; p++, dst += PackedMatrix.PanelWidth)
            {
                var src = new ReadOnlySpan<float>(b + (nint)p * stride + col, cols);
                src.CopyTo(new Span<float>(dst, PackedMatrix.PanelWidth));
                if (cols < PackedMatrix.PanelWidth) new Span<float>(dst + cols, PackedMatrix.PanelWidth - cols).Clear();
            }
        }
    }

    /// <summary>In place, softmax(scale·row), shifted by the row maximum for stability.</summary>
    internal static void Softmax(Span<float> row, float scale)
    {
        float max = float.NegativeInfinity;
        int i = 0;
        if (Vector512.IsHardwareAccelerated && row.Length >= Vector512<float>.Count)
        {
            var m = Vector512.Create(float.NegativeInfinity);
            ref float r0 = ref row[0];
            for (; i <= row.Length - Vector512<float>.Count; i += Vector512<float>.Count) m = Vector512.Max(m, Vector512.LoadUnsafe(ref r0, (nuint)i));
            for (int l = 0; l < Vector512<float>.Count; l++) max = Math.Max(max, m.GetElement(l));
        }
        for (; i < row.Length; i++) max = Math.Max(max, row[i]);
        float sum = VectorMath.ExpScaledSum(row, scale, max * scale);
        float inv = 1f / sum;
        i = 0;
        if (Vector512.IsHardwareAccelerated && row.Length >= Vector512<float>.Count)
        {
            var s = Vector512.Create(inv);
            ref float r0 = ref row[0];
            for (; i <= row.Length - Vector512<float>.Count; i += Vector512<float>.Count) (Vector512.LoadUnsafe(ref r0, (nuint)i) * s).StoreUnsafe(ref r0, (nuint)i);
        }
        for (; i < row.Length; i++) row[i] *= inv;
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
