using System.Buffers;
using System.Numerics.Tensors;
using Funnel.Numerics;

namespace Funnel.Training;

/// <summary>
/// Multi-head self-attention over an unpadded batch, as the inference kernel runs it (each sequence at its own
/// length), with dropout on the probabilities and the backward pass. Nothing but Q, K, V is kept between the
/// passes: the backward pass recomputes each (sequence, head)'s probabilities, so saved activation memory does
/// not grow with the square of the length.
/// </summary>
internal static class AttentionLayer
{
    private const int QueryBlock = 16;

    /// <summary>context = dropout(softmax(Q·Kᵀ/√d))·V per sequence and head. Without dropout this is
    /// <see cref="Attention.SelfAttention(ReadOnlySpan{float}, ReadOnlySpan{int}, int, int, Span{float}, int)"/> itself.</summary>
    public static unsafe void Forward(ReadOnlySpan<float> qkv, SequenceBatch batch, int heads, int headDim, Span<float> context,
        Dropout dropout, int layer, int threads)
    {
        if (!dropout.IsActive)
        {
            Attention.SelfAttention(qkv, batch.Lengths, heads, headDim, context, threads);
            return;
        }
        if (!Gemm.IsAccelerated)
        {
            int hidden = heads * headDim;
            for (int s = 0; s < batch.Count; s++)
                ForwardReference(qkv[(batch.Offsets[s] * 3 * hidden)..], batch.Lengths[s], heads, headDim, context[(batch.Offsets[s] * hidden)..], Keep(dropout, batch, s, layer));
            return;
        }
        fixed (float* pq = qkv, pc = context)
            WorkSplit.Run(new ForwardJob(pq, pc, batch, heads, headDim, dropout, layer), batch.Count * heads, threads);
    }

    private readonly unsafe struct ForwardJob(float* qkv, float* output, SequenceBatch batch, int heads, int headDim, Dropout dropout, int layer) : IWorkItems
    {
        public void Run(int item)
        {
            int s = item / heads, head = item % heads;
            int start = batch.Offsets[s], length = batch.Lengths[s];
            int hidden = heads * headDim, stride = 3 * hidden;
            int keysSize = PackedMatrix.PanelCount(length) * PackedMatrix.PanelWidth * headDim;
            int valuesSize = PackedMatrix.PanelCount(headDim) * PackedMatrix.PanelWidth * length;
            int scoresSize = Math.Min(length, QueryBlock) * length;
            float[] scratch = ArrayPool<float>.Shared.Rent(keysSize + valuesSize + scoresSize + length);
            fixed (float* ps = scratch)
            {
                float* keys = ps, values = ps + keysSize, scores = values + valuesSize, inverseSums = scores + scoresSize;
                float* q = qkv + (nint)start * stride + head * headDim;
                Attention.PackKeys(q + hidden, length, headDim, stride, keys);
                Attention.PackRows(q + 2 * hidden, length, headDim, stride, values);
                float scale = 1f / MathF.Sqrt(headDim);
                float* o = output + (nint)start * hidden + head * headDim;
                for (int i0 = 0; i0 < length; i0 += QueryBlock)
                {
                    int i1 = Math.Min(length, i0 + QueryBlock);
                    Gemm.Multiply(q, stride, i0, i1, headDim, keys, length, 0, PackedMatrix.PanelCount(length), GemmOutput.Plain(scores - (nint)i0 * length, length));
                    Attention.ExpRows(scores, length, i1 - i0, length, scale, inverseSums + i0);
                    // Dropping unnormalised weights and normalising afterwards drops the probabilities themselves.
                    for (int i = i0; i < i1; i++)
                        dropout.Apply(new Span<float>(scores + (nint)(i - i0) * length, length), RowStream(batch, s, layer, head, length, i));
                    Gemm.Multiply(scores - (nint)i0 * length, length, i0, i1, length, values, headDim, 0, PackedMatrix.PanelCount(headDim), GemmOutput.Plain(o, hidden));
                }
                for (int i = 0; i < length; i++) Attention.Scale(o + (nint)i * hidden, headDim, inverseSums[i]);
            }
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    private static ulong RowStream(SequenceBatch batch, int s, int layer, int head, int length, int i) =>
        Dropout.RowStream(batch.DropoutKeys[s], DropoutSite.AttentionProbabilities, layer, (long)head * length + i);

    /// <summary>Sequence <paramref name="s"/>'s dropout factors: keep(head, query, key) is 0 or 1/(1 − p), 1 without dropout.</summary>
    internal static Func<int, int, int, double> Keep(Dropout dropout, SequenceBatch batch, int s, int layer)
    {
        if (!dropout.IsActive) return (_, _, _) => 1;
        int length = batch.Lengths[s];
        double scale = 1 / (1 - (double)dropout.Probability);
        return (h, i, j) => dropout.Keep(RowStream(batch, s, layer, h, length, i), j) ? scale : 0;
    }

    /// <summary>
    /// dQ, dK, dV (written into <paramref name="dqkv"/>, laid out as qkv) from d(context), with P recomputed:
    /// dV = P̃ᵀ·dO, dP = mask ⊙ dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = dS·K/√d, dK = dSᵀ·Q/√d.
    /// </summary>
    public static unsafe void Backward(ReadOnlySpan<float> qkv, ReadOnlySpan<float> dContext, SequenceBatch batch, int heads, int headDim,
        Span<float> dqkv, Dropout dropout, int layer, int threads)
    {
        if (!Gemm.IsAccelerated)
        {
            int hidden = heads * headDim;
            for (int s = 0; s < batch.Count; s++)
                BackwardReference(qkv[(batch.Offsets[s] * 3 * hidden)..], dContext[(batch.Offsets[s] * hidden)..], batch.Lengths[s], heads, headDim,
                    dqkv[(batch.Offsets[s] * 3 * hidden)..], Keep(dropout, batch, s, layer));
            return;
        }
        fixed (float* pq = qkv, pdo = dContext, pdq = dqkv)
            WorkSplit.Run(new BackwardJob(pq, pdo, pdq, batch, heads, headDim, dropout, layer), batch.Count * heads, threads);
    }

    private readonly unsafe struct BackwardJob(float* qkv, float* dContext, float* dqkv, SequenceBatch batch, int heads, int headDim, Dropout dropout, int layer)
        : IWorkItems
    {
        public void Run(int item)
        {
            int s = item / heads, head = item % heads;
            int start = batch.Offsets[s], length = batch.Lengths[s];
            int hidden = heads * headDim, stride = 3 * hidden;
            int keyPanels = PackedMatrix.PanelCount(length), dimPanels = PackedMatrix.PanelCount(headDim);
            int keysSize = keyPanels * PackedMatrix.PanelWidth * headDim, rowsSize = dimPanels * PackedMatrix.PanelWidth * length;
            int square = length * length, panelsSize = GemmTransposedA.PackedSize(length, headDim);
            float[] scratch = ArrayPool<float>.Shared.Rent(2 * keysSize + rowsSize + panelsSize + (dropout.IsActive ? 3 : 2) * square + length);
            fixed (float* ps = scratch)
            {
                float* keys = ps, valueKeys = keys + keysSize, keyRows = valueKeys + keysSize, panels = keyRows + rowsSize;
                float* p = panels + panelsSize, dp = p + square, dropped = dropout.IsActive ? dp + square : p;
                float* inverseSums = p + (dropout.IsActive ? 3 : 2) * square;
                float* q = qkv + (nint)start * stride + head * headDim, k = q + hidden, v = q + 2 * hidden;
                float* dO = dContext + (nint)start * hidden + head * headDim;
                float* dq = dqkv + (nint)start * stride + head * headDim, dk = dq + hidden, dv = dq + 2 * hidden;
                Attention.PackKeys(k, length, headDim, stride, keys);
                Attention.PackKeys(v, length, headDim, stride, valueKeys);
                Attention.PackRows(k, length, headDim, stride, keyRows);
                float scale = 1f / MathF.Sqrt(headDim);

                Gemm.Multiply(q, stride, 0, length, headDim, keys, length, 0, keyPanels, GemmOutput.Plain(p, length));
                Attention.ExpRows(p, length, length, length, scale, inverseSums);
                for (int i = 0; i < length; i++)
                {
                    var row = new Span<float>(p + (nint)i * length, length);
                    Attention.Scale(p + (nint)i * length, length, inverseSums[i]);
                    if (!dropout.IsActive) continue;
                    var kept = new Span<float>(dropped + (nint)i * length, length);
                    row.CopyTo(kept);
                    dropout.Apply(kept, RowStream(batch, s, layer, head, length, i));
                }
                GemmTransposedA.Pack(dO, hidden, length, headDim, panels);
                GemmTransposedA.Multiply(dropped, length, panels, length, dv, stride, 0, length, headDim, accumulate: false);
                Gemm.Multiply(dO, hidden, 0, length, headDim, valueKeys, length, 0, keyPanels, GemmOutput.Plain(dp, length));
                for (int i = 0; i < length; i++)
                {
                    var dRow = new Span<float>(dp + (nint)i * length, length);
                    var pRow = new ReadOnlySpan<float>(p + (nint)i * length, length);
                    dropout.Apply(dRow, RowStream(batch, s, layer, head, length, i));
                    float dot = TensorPrimitives.Dot(pRow, dRow);
                    // dS = P ⊙ (dP − dot), times the 1/√d of the scores.
                    TensorPrimitives.Add(dRow, -dot, dRow);
                    TensorPrimitives.Multiply(dRow, pRow, dRow);
                    TensorPrimitives.Multiply(dRow, scale, dRow);
                }
                Gemm.Multiply(dp, length, 0, length, length, keyRows, headDim, 0, dimPanels, GemmOutput.Plain(dq, stride));
                GemmTransposedA.Pack(q, stride, length, headDim, panels);
                GemmTransposedA.Multiply(dp, length, panels, length, dk, stride, 0, length, headDim, accumulate: false);
            }
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    /// <summary>The scalar definition of the forward pass with dropout: one sequence, in double precision.</summary>
    internal static void ForwardReference(ReadOnlySpan<float> qkv, int length, int heads, int headDim, Span<float> context, Func<int, int, int, double> keep)
    {
        int hidden = heads * headDim, stride = 3 * hidden;
        double scale = 1.0 / Math.Sqrt(headDim);
        var e = new double[length];
        for (int h = 0; h < heads; h++)
        {
            int o = h * headDim;
            for (int i = 0; i < length; i++)
            {
                for (int j = 0; j < length; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) dot += qkv[i * stride + o + d] * qkv[j * stride + hidden + o + d];
                    e[j] = dot * scale;
                }
                double max = e.Max(), sum = 0;
                for (int j = 0; j < length; j++) sum += e[j] = Math.Exp(e[j] - max);
                for (int d = 0; d < headDim; d++)
                {
                    double acc = 0;
                    for (int j = 0; j < length; j++) acc += e[j] / sum * keep(h, i, j) * qkv[j * stride + 2 * hidden + o + d];
                    context[i * hidden + o + d] = (float)acc;
                }
            }
        }
    }

    /// <summary>The scalar definition the backward pass is tested against: one sequence, in double precision.</summary>
    internal static void BackwardReference(ReadOnlySpan<float> qkv, ReadOnlySpan<float> dContext, int length, int heads, int headDim,
        Span<float> dqkv, Func<int, int, int, double> keep)
    {
        int hidden = heads * headDim, stride = 3 * hidden;
        double scale = 1.0 / Math.Sqrt(headDim);
        var p = new double[length, length];
        var dp = new double[length, length];
        for (int h = 0; h < heads; h++)
        {
            int o = h * headDim;
            for (int i = 0; i < length; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < length; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) dot += qkv[i * stride + o + d] * qkv[j * stride + hidden + o + d];
                    p[i, j] = dot * scale;
                    max = Math.Max(max, p[i, j]);
                }
                double sum = 0;
                for (int j = 0; j < length; j++) sum += p[i, j] = Math.Exp(p[i, j] - max);
                for (int j = 0; j < length; j++) p[i, j] /= sum;
            }
            for (int i = 0; i < length; i++)
            {
                double rowDot = 0;
                for (int j = 0; j < length; j++)
                {
                    double g = 0;
                    for (int d = 0; d < headDim; d++) g += dContext[i * hidden + o + d] * qkv[j * stride + 2 * hidden + o + d];
                    dp[i, j] = g * keep(h, i, j);
                    rowDot += dp[i, j] * p[i, j];
                }
                for (int j = 0; j < length; j++) dp[i, j] = p[i, j] * (dp[i, j] - rowDot) * scale;
            }
            for (int j = 0; j < length; j++)
            {
                for (int d = 0; d < headDim; d++)
                {
                    double dq = 0, dk = 0, dv = 0;
                    for (int i = 0; i < length; i++)
                    {
                        dq += dp[j, i] * qkv[i * stride + hidden + o + d];
                        dk += dp[i, j] * qkv[i * stride + o + d];
                        dv += p[i, j] * keep(h, i, j) * dContext[i * hidden + o + d];
                    }
                    dqkv[j * stride + o + d] = (float)dq;
                    dqkv[j * stride + hidden + o + d] = (float)dk;
                    dqkv[j * stride + 2 * hidden + o + d] = (float)dv;
                }
            }
        }
    }
}
