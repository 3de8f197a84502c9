namespace Funnel.Tokenization;

/// <summary>
/// HF's <c>TemplateProcessing</c> (BERT: <c>[CLS] $A [SEP]</c> and <c>[CLS] $A [SEP] $B:1 [SEP]:1</c>):
/// which special ids go where and the token type of every part.
/// </summary>
internal sealed class PostProcessor
{
    /// <summary>One part of a template: either special token ids, or sequence A (0) / B (1).</summary>
    public readonly record struct Piece(int[]? SpecialIds, int Sequence, int TypeId);

    public PostProcessor(IReadOnlyList<Piece> single, IReadOnlyList<Piece> pair)
    {
        Single = single;
        Pair = pair;
        SingleSpecialCount = single.Sum(p => p.SpecialIds?.Length ?? 0);
        PairSpecialCount = pair.Sum(p => p.SpecialIds?.Length ?? 0);
    }

    /// <summary>BERT's template for the given [CLS] and [SEP] ids.</summary>
    public static PostProcessor Bert(int clsId, int sepId) => new(
        [new([clsId], 0, 0), new(null, 0, 0), new([sepId], 0, 0)],
        [new([clsId], 0, 0), new(null, 0, 0), new([sepId], 0, 0), new(null, 1, 1), new([sepId], 0, 1)]);

    public IReadOnlyList<Piece> Single { get; }
    public IReadOnlyList<Piece> Pair { get; }
    public int SingleSpecialCount { get; }
    public int PairSpecialCount { get; }

    internal Encoding Apply(ReadOnlySpan<Token> first, ReadOnlySpan<Token> second, bool isPair)
    {
        IReadOnlyList<Piece> template = isPair ? Pair : Single;
        int length = first.Length + (isPair ? second.Length + PairSpecialCount : SingleSpecialCount);
        var ids = new int[length];
        var typeIds = new int[length];
        var offsets = new (int Start, int End)[length];
        var special = new bool[length];
        int n = 0;
        foreach (Piece piece in template)
        {
            if (piece.SpecialIds is { } specialIds)
            {
                foreach (int id in specialIds)
                {
                    ids[n] = id;
                    typeIds[n] = piece.TypeId;
                    special[n] = true;
                    n++;
                }
                continue;
            }
            foreach (Token token in piece.Sequence == 0 ? first : second)
            {
                ids[n] = token.Id;
                typeIds[n] = piece.TypeId;
                offsets[n] = (token.Start, token.End);
                n++;
            }
        }
        var mask = new int[length];
        Array.Fill(mask, 1);
        return new Encoding(ids, typeIds, mask, offsets, special);
    }
}
