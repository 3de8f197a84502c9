using Funnel.Inference;

namespace Funnel.Training;

/// <summary>
/// Tokenized sequences laid back to back, as the encoder runs them unpadded, each with the key its dropout masks
/// derive from (so a sequence's masks do not depend on the batch it is in). <see cref="Offsets"/> has one more entry
/// than there are sequences, the last being the token count.
/// </summary>
internal sealed record SequenceBatch(int[] Ids, int[] TypeIds, int[] Lengths, int[] Offsets, ulong[] DropoutKeys)
{
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
