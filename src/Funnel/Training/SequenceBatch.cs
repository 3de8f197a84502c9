using Funnel.Inference;

namespace Funnel.Training;

/// <summary>
/// Tokenized sequences laid back to back, as the encoder runs them unpadded, each with the key its
/// dropout masks derive from (so a sequence's masks do not depend on the batch it is in).
/// </summary>
internal sealed class SequenceBatch
{
    private SequenceBatch(int[] ids, int[] typeIds, int[] lengths, int[] offsets, ulong[] dropoutKeys)
    {
        Ids = ids;
        TypeIds = typeIds;
        Lengths = lengths;
        Offsets = offsets;
        DropoutKeys = dropoutKeys;
    }

    public int[] Ids { get; }

    public int[] TypeIds { get; }

    public int[] Lengths { get; }

    /// <summary>Where each sequence starts; one more entry than sequences, the last being the token count.</summary>
    public int[] Offsets { get; }

    public ulong[] DropoutKeys { get; }

    public int Count => Lengths.Length;

    public int Tokens => Ids.Length;

    public static SequenceBatch Create(IReadOnlyList<TokenSequence> sequences, IReadOnlyList<ulong> dropoutKeys)
    {
        if (dropoutKeys.Count != sequences.Count) throw new ArgumentException($"{dropoutKeys.Count} dropout keys for {sequences.Count} sequences", nameof(dropoutKeys));
        var offsets = new int[sequences.Count + 1];
        var lengths = new int[sequences.Count];
        for (int s = 0; s < sequences.Count; s++)
        {
            lengths[s] = sequences[s].Ids.Length;
            offsets[s + 1] = offsets[s] + lengths[s];
        }
        var ids = new int[offsets[^1]];
        var types = new int[offsets[^1]];
        for (int s = 0; s < sequences.Count; s++)
        {
            sequences[s].Ids.CopyTo(ids, offsets[s]);
            sequences[s].TypeIds.CopyTo(types, offsets[s]);
        }
        return new SequenceBatch(ids, types, lengths, offsets, dropoutKeys.ToArray());
    }
}
