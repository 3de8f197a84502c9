using System.Numerics.Tensors;

namespace Funnel.Training;

/// <summary>
/// BertForSequenceClassification's head on each sequence's [CLS] state, one label:
/// logit = classifier(dropout(tanh(pooler(h_cls)))). The same operations as inference's head, so with dropout
/// off the logits are identical.
/// </summary>
internal sealed class ClassifierHead(LinearLayer pooler, LinearLayer classifier, Dropout dropout) : ISequenceHead
{
    public int Dimension => 1;

    public LinearLayer Pooler { get; } = pooler;

    public LinearLayer Classifier { get; } = classifier;

    public IEnumerable<Parameter> Parameters => [Pooler.Weight, Pooler.Bias, Classifier.Weight, Classifier.Bias];

    public IEnumerable<LinearLayer> Linears => [Pooler, Classifier];

    /// <summary>What the forward pass keeps: the [CLS] rows, tanh outputs and their dropped copy.</summary>
    public sealed record Saved(float[] Cls, float[] Pooled, float[] Dropped, bool Training);

    public IHeadPass Forward(EncoderActivations act, bool training, Span<float> representations)
    {
        float[] logits = Forward(act.Hidden, act.Batch, training, out Saved saved);
        logits.CopyTo(representations);
        return new Pass(this, act.Batch, saved);
    }

    private sealed class Pass(ClassifierHead head, SequenceBatch batch, Saved saved) : IHeadPass
    {
        public void Backward(ReadOnlySpan<float> dRepresentations, Span<float> dStates) => head.Backward(saved, batch, dRepresentations, dStates);
    }

    public float[] Forward(ReadOnlySpan<float> states, SequenceBatch batch, bool training, out Saved saved)
    {
        int h = Pooler.In, count = batch.Count;
        var cls = new float[count * h];
        for (int s = 0; s < count; s++) states.Slice(batch.Offsets[s] * h, h).CopyTo(cls.AsSpan(s * h, h));
        var pooled = new float[count * h];
        Pooler.Forward(cls, count, pooled, threads: 1);
        TensorPrimitives.Tanh(pooled, pooled);
        float[] dropped = pooled;
        if (training && dropout.IsActive)
        {
            dropped = (float[])pooled.Clone();
            for (int s = 0; s < count; s++) dropout.Apply(dropped.AsSpan(s * h, h), Stream(batch, s));
        }
        var logits = new float[count];
        Classifier.Forward(dropped, count, logits, threads: 1);
        saved = new Saved(cls, pooled, dropped, training);
        return logits;
    }

    private static ulong Stream(SequenceBatch batch, int s) => Dropout.RowStream(batch.DropoutKeys[s], DropoutSite.Classifier, 0, 0);

    /// <summary>Accumulates the head's gradients and writes d(states) [tokens × hidden] (non-zero on [CLS] rows only).</summary>
    public void Backward(Saved saved, SequenceBatch batch, ReadOnlySpan<float> dLogits, Span<float> dStates)
    {
        int h = Pooler.In, count = batch.Count;
        Classifier.AccumulateGradients(dLogits, saved.Dropped, count, threads: 1);
        var dPooled = new float[count * h];
        Classifier.InputGradient(dLogits, count, dPooled, threads: 1);
        if (saved.Training && dropout.IsActive)
            for (int s = 0; s < count; s++) dropout.Apply(dPooled.AsSpan(s * h, h), Stream(batch, s));
        // tanh' = 1 − tanh².
        for (int i = 0; i < dPooled.Length; i++) dPooled[i] *= 1 - saved.Pooled[i] * saved.Pooled[i];
        Pooler.AccumulateGradients(dPooled, saved.Cls, count, threads: 1);
        var dCls = new float[count * h];
        Pooler.InputGradient(dPooled, count, dCls, threads: 1);
        dStates[..(batch.Tokens * h)].Clear();
        for (int s = 0; s < count; s++) dCls.AsSpan(s * h, h).CopyTo(dStates.Slice(batch.Offsets[s] * h, h));
    }
}
