namespace Funnel.Tokenization;

/// <summary>
/// One tokenized input, ready for a BERT model. Offsets are [start, end) into the original text in
/// UTF-16 units (string indices; equal to HF's char offsets for text without surrogate pairs), (0, 0)
/// for special and padding tokens.
/// </summary>
public sealed class Encoding
{
    public Encoding(int[] inputIds, int[] tokenTypeIds, int[] attentionMask, (int Start, int End)[] offsets, bool[] specialTokensMask)
    {
        int n = inputIds.Length;
        if (tokenTypeIds.Length != n || attentionMask.Length != n || offsets.Length != n || specialTokensMask.Length != n)
            throw new ArgumentException("every per-token array of an Encoding must have the same length");
        InputIds = inputIds;
        TokenTypeIds = tokenTypeIds;
        AttentionMask = attentionMask;
        Offsets = offsets;
        SpecialTokensMask = specialTokensMask;
    }

    public int[] InputIds { get; }
    public int[] TokenTypeIds { get; }
    /// <summary>1 for real tokens, 0 for padding.</summary>
    public int[] AttentionMask { get; }
    public (int Start, int End)[] Offsets { get; }
    /// <summary>True for tokens the post-processor or padding added ([CLS], [SEP], [PAD]).</summary>
    public bool[] SpecialTokensMask { get; }
    public int Length => InputIds.Length;
}
