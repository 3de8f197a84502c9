namespace Funnel.Tokenization;

/// <summary>A padded batch in row-major [BatchSize × SequenceLength] arrays, the layout a model consumes.</summary>
public sealed record PaddedBatch(int BatchSize, int SequenceLength, int[] InputIds, int[] TokenTypeIds, int[] AttentionMask);

/// <summary>Pads encodings to a common length with the pad id, type id and attention mask 0.</summary>
public static class Padding
{
    /// <summary>
    /// The length a batch pads to: <paramref name="fixedLength"/> if given, else the longest encoding,
    /// rounded up to a multiple of <paramref name="multipleOf"/>.
    /// </summary>
    public static int TargetLength(IReadOnlyList<Encoding> batch, int? fixedLength = null, int? multipleOf = null)
    {
        int length = fixedLength ?? (batch.Count == 0 ? 0 : batch.Max(e => e.Length));
        if (multipleOf is > 1 and int m && length % m != 0) length += m - length % m;
        return length;
    }

    /// <summary>
    /// Pads every encoding shorter than the target length (see <see cref="TargetLength"/>); longer ones
    /// are returned unchanged, as HF does.
    /// </summary>
    public static Encoding[] Pad(IReadOnlyList<Encoding> batch, PaddingOptions options)
    {
        int target = TargetLength(batch, options.FixedLength, options.PadToMultipleOf);
        var padded = new Encoding[batch.Count];
        for (int i = 0; i < batch.Count; i++) padded[i] = PadOne(batch[i], target, options);
        return padded;
    }

    /// <summary>Pads a batch into row-major arrays of one common length; fails on an encoding longer than it.</summary>
    public static PaddedBatch ToBatch(IReadOnlyList<Encoding> batch, PaddingOptions options)
    {
        int target = TargetLength(batch, options.FixedLength, options.PadToMultipleOf);
        var ids = new int[batch.Count * target];
        var types = new int[batch.Count * target];
        var mask = new int[batch.Count * target];
        for (int i = 0; i < batch.Count; i++)
        {
            Encoding e = batch[i];
            if (e.Length > target)
                throw new ArgumentException($"encoding {i} has {e.Length} tokens, more than the padded length {target}; truncate it first", nameof(batch));
            int pad = target - e.Length;
            int at = i * target + (options.Side == TruncationSide.Left ? pad : 0);
            int padAt = i * target + (options.Side == TruncationSide.Left ? 0 : e.Length);
            e.InputIds.CopyTo(ids, at);
            e.TokenTypeIds.CopyTo(types, at);
            e.AttentionMask.CopyTo(mask, at);
            ids.AsSpan(padAt, pad).Fill(options.PadId);
            types.AsSpan(padAt, pad).Fill(options.PadTypeId);
        }
        return new PaddedBatch(batch.Count, target, ids, types, mask);
    }

    private static Encoding PadOne(Encoding e, int target, PaddingOptions options)
    {
        if (e.Length >= target) return e;
        int pad = target - e.Length;
        bool left = options.Side == TruncationSide.Left;
        return new Encoding(
            Padded(e.InputIds, options.PadId),
            Padded(e.TokenTypeIds, options.PadTypeId),
            Padded(e.AttentionMask, 0),
            Padded(e.Offsets, (0, 0)),
            Padded(e.SpecialTokensMask, true));

        T[] Padded<T>(T[] values, T fill)
        {
            var result = new T[target];
            values.CopyTo(result, left ? pad : 0);
            result.AsSpan(left ? 0 : values.Length, pad).Fill(fill);
            return result;
        }
    }
}
