using System.Buffers;
using Funnel.Tokenization;

namespace Funnel.Inference;

/// <summary>One tokenized input: token ids and token type ids, unpadded.</summary>
internal readonly record struct TokenSequence(int[] Ids, int[] TypeIds);

/// <summary>Receives one input's last hidden states [length × hidden] and its index in the caller's list.</summary>
internal delegate void HiddenStatesSink(ReadOnlySpan<float> hidden, int length, int index);

/// <summary>
/// Runs a list of inputs through the encoder in length-sorted batches (so a batch holds similar
/// lengths) and hands each input's hidden states to a sink with its original index.
/// </summary>
internal static class TokenBatches
{
    /// <summary>Tokenizes <paramref name="count"/> inputs, spread over threads for large lists
    /// (the tokenizer is immutable, so this is safe).</summary>
    public static TokenSequence[] Tokenize(int count, Func<int, Encoding> encode, int maxThreads, CancellationToken ct)
    {
        var result = new TokenSequence[count];
        void One(int i)
        {
            Encoding e = encode(i);
            result[i] = new TokenSequence(e.InputIds, e.TokenTypeIds);
        }
        if (maxThreads <= 1 || count < 64)
        {
            for (int i = 0; i < count; i++) One(i);
        }
        else
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = maxThreads, CancellationToken = ct }, One);
        }
        return result;
    }

    public static void Run(BertModel model, IReadOnlyList<TokenSequence> inputs, int batchSize, int maxThreads,
        HiddenStatesSink sink, CancellationToken ct)
    {
        int[] order = Enumerable.Range(0, inputs.Count).OrderByDescending(i => inputs[i].Ids.Length).ThenBy(i => i).ToArray();
        int h = model.Config.HiddenSize;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            int count = Math.Min(batchSize, order.Length - start);
            int total = 0;
            for (int b = 0; b < count; b++) total += inputs[order[start + b]].Ids.Length;
            int[] ids = ArrayPool<int>.Shared.Rent(total), types = ArrayPool<int>.Shared.Rent(total), lengths = ArrayPool<int>.Shared.Rent(count);
            float[] hidden = ArrayPool<float>.Shared.Rent(total * h);
            try
            {
                int at = 0;
                for (int b = 0; b < count; b++)
                {
                    TokenSequence s = inputs[order[start + b]];
                    s.Ids.CopyTo(ids, at);
                    s.TypeIds.CopyTo(types, at);
                    lengths[b] = s.Ids.Length;
                    at += s.Ids.Length;
                }
                model.Forward(ids.AsSpan(0, total), types.AsSpan(0, total), lengths.AsSpan(0, count), hidden.AsSpan(0, total * h), maxThreads, ct);
                at = 0;
                for (int b = 0; b < count; b++)
                {
                    sink(hidden.AsSpan(at * h, lengths[b] * h), lengths[b], order[start + b]);
                    at += lengths[b];
                }
            }
            finally
            {
                ArrayPool<int>.Shared.Return(ids);
                ArrayPool<int>.Shared.Return(types);
                ArrayPool<int>.Shared.Return(lengths);
                ArrayPool<float>.Shared.Return(hidden);
            }
        }
    }
}
