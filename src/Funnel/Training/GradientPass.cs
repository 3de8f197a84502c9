using Funnel.Inference;

namespace Funnel.Training;

/// <summary>How one forward/backward pass runs: dropout on or off, the GradCache chunk size, the factor the loss's
/// gradient is scaled by (1 / gradient-accumulation steps) and the threads.</summary>
internal sealed record PassSettings(bool Training, int? MiniBatchSize, float LossScale, int Threads);

/// <summary>
/// A loss's forward and backward pass through head and encoder over a list of sequences. The loss sees every
/// sequence's representation at once. With a mini-batch size below the sequence count this is GradCache
/// (sentence-transformers' Cached… losses): representations are computed chunk by chunk without saving
/// activations, the loss's gradient with respect to them is computed once, and each chunk is then run again with
/// its activations saved and differentiated from its slice of that gradient. Dropout masks depend only on each
/// sequence's key, so both passes see the same masks and the result is the same loss and gradient; activation
/// memory is bounded by the chunk instead of the batch.
/// </summary>
internal static class GradientPass
{
    /// <summary>Runs the pass; <paramref name="loss"/> maps all representations [count × dim] to the loss value and
    /// writes d(loss)/d(representations). Accumulates every parameter's gradient; returns the loss value.</summary>
    public static double Run(TrainingModel model, IReadOnlyList<TokenSequence> sequences, IReadOnlyList<ulong> keys,
        Func<float[], float[], double> loss, PassSettings settings, CancellationToken ct)
    {
        int count = sequences.Count, dim = model.Head.Dimension;
        var dReps = new float[count * dim];
        if (settings.MiniBatchSize is not int chunk || chunk >= count)
        {
            SequenceBatch batch = SequenceBatch.Create(sequences, keys);
            using EncoderActivations act = model.Encoder.Forward(batch, settings.Training, keep: true, settings.Threads, ct);
            var reps = new float[count * dim];
            IHeadPass pass = model.Head.Forward(act, settings.Training, reps);
            double value = loss(reps, dReps);
            Backward(model, act, pass, dReps, settings, ct);
            return value;
        }

        float[] all = Represent(model, sequences, keys, settings.Training, chunk, settings.Threads, ct);
        double cached = loss(all, dReps);
        for (int start = 0; start < count; start += chunk)
        {
            int n = Math.Min(chunk, count - start);
            SequenceBatch batch = SequenceBatch.Create(Slice(sequences, start, n), Slice(keys, start, n));
            using EncoderActivations act = model.Encoder.Forward(batch, settings.Training, keep: true, settings.Threads, ct);
            IHeadPass pass = model.Head.Forward(act, settings.Training, new float[n * dim]);
            Backward(model, act, pass, dReps.AsSpan(start * dim, n * dim), settings, ct);
        }
        return cached;
    }

    private static void Backward(TrainingModel model, EncoderActivations act, IHeadPass pass, Span<float> dReps, PassSettings settings, CancellationToken ct)
    {
        if (settings.LossScale != 1) System.Numerics.Tensors.TensorPrimitives.Multiply(dReps, settings.LossScale, dReps);
        using var dStates = new PooledArray(act.Batch.Tokens * model.Config.HiddenSize);
        pass.Backward(dReps, dStates.Span);
        model.Encoder.Backward(act, dStates.Span, settings.Threads, ct);
    }

    /// <summary>Every sequence's representation, [count × dim], in chunks of <paramref name="chunk"/> sequences and
    /// without saving activations (evaluation, and the first GradCache pass).</summary>
    public static float[] Represent(TrainingModel model, IReadOnlyList<TokenSequence> sequences, IReadOnlyList<ulong> keys, bool training, int chunk,
        int threads, CancellationToken ct)
    {
        int dim = model.Head.Dimension;
        var reps = new float[sequences.Count * dim];
        for (int start = 0; start < sequences.Count; start += chunk)
        {
            int n = Math.Min(chunk, sequences.Count - start);
            SequenceBatch batch = SequenceBatch.Create(Slice(sequences, start, n), Slice(keys, start, n));
            using EncoderActivations act = model.Encoder.Forward(batch, training, keep: false, threads, ct);
            model.Head.Forward(act, training, reps.AsSpan(start * dim, n * dim));
        }
        return reps;
    }

    private static T[] Slice<T>(IReadOnlyList<T> list, int start, int count)
    {
        var result = new T[count];
        for (int i = 0; i < count; i++) result[i] = list[start + i];
        return result;
    }
}
