namespace Funnel.Inference.Kernels;

/// <summary>
/// Multi-head self-attention for one unpadded sequence: the encoder runs every sequence of a
/// batch at its own length, so no padding position is ever computed or masked.
/// </summary>
public static class Attention
{
    /// <summary>
    /// <paramref name="qkv"/> is [seqLen × 3·hidden] with Q, K, V side by side in each row (as the
    /// fused QKV projection writes it); <paramref name="output"/> is [seqLen × hidden], heads
    /// concatenated. softmax(Q·Kᵀ/√headDim)·V per head.
    /// </summary>
    public static void SelfAttention(ReadOnlySpan<float> qkv, int seqLen, int heads, int headDim, Span<float> output)
        => SelfAttentionReference(qkv, seqLen, heads, headDim, output);

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
