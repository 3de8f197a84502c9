namespace Funnel.Tokenization;

/// <summary>
/// The WordPiece model: greedy longest-match-first over one pre-tokenized word, continuation pieces
/// carrying <see cref="ContinuationPrefix"/>; a word longer than <see cref="MaxInputCharsPerWord"/>
/// code points, or one with any piece missing from the vocabulary, becomes a single unknown token.
/// </summary>
internal sealed class WordPiece
{
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _wordStarts;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _continuations;
    private readonly int _longestPiece;

    public WordPiece(IReadOnlyDictionary<string, int> vocab, string unkToken, string continuationPrefix, int maxInputCharsPerWord)
    {
        if (!vocab.TryGetValue(unkToken, out int unkId))
            throw new InvalidDataException($"the WordPiece vocabulary has no entry for its unknown token '{unkToken}'");
        UnkId = unkId;
        UnkToken = unkToken;
        ContinuationPrefix = continuationPrefix;
        MaxInputCharsPerWord = maxInputCharsPerWord;
        var starts = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        var continuations = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (token, id) in vocab)
        {
            starts[token] = id;
            _longestPiece = Math.Max(_longestPiece, token.Length);
            if (continuationPrefix.Length > 0 && token.StartsWith(continuationPrefix, StringComparison.Ordinal))
                continuations[token[continuationPrefix.Length..]] = id;
        }
        _wordStarts = starts.GetAlternateLookup<ReadOnlySpan<char>>();
        _continuations = continuations.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int UnkId { get; }
    public string UnkToken { get; }
    public string ContinuationPrefix { get; }
    public int MaxInputCharsPerWord { get; }

    /// <summary>Appends the pieces of <paramref name="word"/> (normalized units [start, end)) to <paramref name="tokens"/>.</summary>
    public void Tokenize(ReadOnlySpan<char> text, int start, int end, ref TokenBuffer tokens, in NormalizedText normalized)
    {
        ReadOnlySpan<char> word = text[start..end];
        int mark = tokens.Count;
        if (CountCodePoints(word) <= MaxInputCharsPerWord)
        {
            int pieceStart = 0;
            while (pieceStart < word.Length)
            {
                var lookup = pieceStart == 0 ? _wordStarts : _continuations;
                int pieceEnd = Math.Min(word.Length, pieceStart + _longestPiece);
                int id = -1;
                while (pieceEnd > pieceStart)
                {
                    if (lookup.TryGetValue(word[pieceStart..pieceEnd], out id)) break;
                    id = -1;
                    // Step back one code point, never into the middle of a surrogate pair.
                    pieceEnd -= pieceEnd - 2 >= pieceStart && char.IsLowSurrogate(word[pieceEnd - 1]) && char.IsHighSurrogate(word[pieceEnd - 2]) ? 2 : 1;
                }
                if (id < 0)
                {
                    tokens.Count = mark;
                    break;
                }
                var (s, e) = normalized.OriginalSpan(start + pieceStart, start + pieceEnd);
                tokens.Add(id, s, e, wordStart: pieceStart == 0);
                pieceStart = pieceEnd;
            }
            if (pieceStart == word.Length) return;
        }
        var (wordStart, wordEnd) = normalized.OriginalSpan(start, end);
        tokens.Add(UnkId, wordStart, wordEnd);
    }

    private static int CountCodePoints(ReadOnlySpan<char> word)
    {
        int count = word.Length;
        for (int i = 1; i < word.Length; i++)
            if (char.IsLowSurrogate(word[i]) && char.IsHighSurrogate(word[i - 1])) count--;
        return count;
    }
}
