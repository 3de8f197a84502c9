using System.Numerics.Tensors;
using Funnel.Inference;

namespace Funnel.Training;

/// <summary>
/// The bi-encoder's head: sentence-transformers Pooling (cls / max / mean / mean_sqrt_len, concatenated in
/// that order) and the optional Normalize module, forward with <see cref="Pooling.Pool"/> itself (so the
/// embeddings equal inference's) and backward into the last hidden states.
/// </summary>
internal sealed class PoolingHead(PoolingMode mode, bool normalize, int hidden) : ISequenceHead
{
    private static readonly PoolingMode[] Order = [PoolingMode.Cls, PoolingMode.Max, PoolingMode.Mean, PoolingMode.MeanSqrtLen];

    public PoolingMode Mode { get; } = mode;

    public bool Normalize { get; } = normalize;

    public int Dimension { get; } = Pooling.Dimension(mode, hidden);

    public IHeadPass Forward(EncoderActivations act, bool training, Span<float> representations)
    {
        var norms = new float[act.Batch.Count];
        Forward(act.Hidden, act.Batch, norms, representations);
        return new Pass(this, act, representations[..(act.Batch.Count * Dimension)].ToArray(), norms);
    }

    private sealed class Pass(PoolingHead head, EncoderActivations act, float[] embeddings, float[] norms) : IHeadPass
    {
        public void Backward(ReadOnlySpan<float> dRepresentations, Span<float> dStates) =>
            head.Backward(act.Hidden, act.Batch, embeddings, norms, dRepresentations, dStates);
    }

    /// <summary>One embedding per sequence into <paramref name="embeddings"/> [sequences × dimension]; <paramref name="norms"/>
    /// receives each pooled vector's L2 norm before normalisation (for the backward pass).</summary>
    public void Forward(ReadOnlySpan<float> states, SequenceBatch batch, Span<float> norms, Span<float> embeddings)
    {
        for (int s = 0; s < batch.Count; s++)
        {
            Span<float> v = embeddings.Slice(s * Dimension, Dimension);
            Pooling.Pool(states.Slice(batch.Offsets[s] * hidden, batch.Lengths[s] * hidden), batch.Lengths[s], hidden, Mode, false, v);
            norms[s] = TensorPrimitives.Norm(v);
            if (Normalize) Numerics.VectorMath.Normalize(v);
        }
    }

    /// <summary>d(states) [tokens × hidden] from d(embeddings), given the forward's embeddings and norms.</summary>
    public void Backward(ReadOnlySpan<float> states, SequenceBatch batch, ReadOnlySpan<float> embeddings, ReadOnlySpan<float> norms,
        ReadOnlySpan<float> dEmbeddings, Span<float> dStates)
    {
        dStates[..(batch.Tokens * hidden)].Clear();
        Span<float> d = new float[Dimension];
        for (int s = 0; s < batch.Count; s++)
        {
            dEmbeddings.Slice(s * Dimension, Dimension).CopyTo(d);
            if (Normalize)
            {
                // y = x/‖x‖: dx = (dy − y·(y·dy))/‖x‖. A zero vector is left as it is (VectorMath.Normalize), so there dx = dy.
                ReadOnlySpan<float> y = embeddings.Slice(s * Dimension, Dimension);
                if (norms[s] > 0 && float.IsFinite(norms[s]))
                {
                    float dot = TensorPrimitives.Dot(y, d);
                    TensorPrimitives.MultiplyAdd(y, -dot, d, d);
                    TensorPrimitives.Divide(d, norms[s], d);
                }
            }
            int start = batch.Offsets[s], length = batch.Lengths[s], at = 0;
            foreach (PoolingMode m in Order)
            {
                if (!Mode.HasFlag(m)) continue;
                ReadOnlySpan<float> part = d.Slice(at, hidden);
                at += hidden;
                switch (m)
                {
                    case PoolingMode.Cls:
                        Add(dStates.Slice(start * hidden, hidden), part, 1f);
                        break;
                    case PoolingMode.Max:
                        for (int c = 0; c < hidden; c++)
                        {
                            // The first token holding the maximum takes the gradient, as torch.max's index does.
                            int best = start;
                            for (int t = start + 1; t < start + length; t++)
                                if (states[t * hidden + c] > states[best * hidden + c]) best = t;
                            dStates[best * hidden + c] += part[c];
                        }
                        break;
                    default:
                        float w = m == PoolingMode.Mean ? 1f / length : 1f / MathF.Sqrt(length);
                        for (int t = start; t < start + length; t++) Add(dStates.Slice(t * hidden, hidden), part, w);
                        break;
                }
            }
        }
    }

    private static void Add(Span<float> target, ReadOnlySpan<float> values, float weight) =>
        TensorPrimitives.MultiplyAdd(values, weight, target, target);
}
