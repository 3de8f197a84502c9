namespace Funnel.Retrieval;

/// <summary>How documents longer than the encoder window are cut into overlapping chunks, in wordpieces.</summary>
public sealed record ChunkingOptions
{
    /// <summary>At most this many wordpieces per chunk; a collection uses the encoder's max_seq_length − 2 ([CLS] and [SEP]).</summary>
    public int MaxTokens { get; init; } = 254;

    /// <summary>Wordpieces shared by consecutive chunks, so that a passage cut by a boundary is still whole in one of them.</summary>
    public int OverlapTokens { get; init; } = 32;

    public const int MinTokens = 8;

    public void Validate()
    {
        if (Problem() is { } problem) throw new ArgumentOutOfRangeException(problem.Property, problem.Message);
    }

    /// <summary>
    /// Why these options cannot chunk, with the property at fault (so the CLI and the server can name their own option or
    /// field for it), or null. The one place the rule lives.
    /// </summary>
    public (string Property, string Message)? Problem()
    {
        if (MaxTokens < MinTokens) return (nameof(MaxTokens), $"chunk size must be at least {MinTokens} wordpieces (got {MaxTokens})");
        if (OverlapTokens < 0 || OverlapTokens > MaxTokens / 2)
            return (nameof(OverlapTokens), $"chunk overlap must be between 0 and half the chunk size, {MaxTokens / 2} (got {OverlapTokens})");
        return null;
    }
}

/// <summary>A chunk: the characters [<see cref="Start"/>, <see cref="End"/>) of a document's full text.</summary>
public readonly record struct ChunkSpan(int Start, int End)
{
    public int Length => End - Start;
}

/// <summary>
/// Splits a text into chunks of at most <see cref="ChunkingOptions.MaxTokens"/> tokens, cutting only between tokens
/// (never inside a word when a whitespace boundary is near) and preferring the end of a sentence in the last half of a window.
/// Works on any tokenizer's character offsets, so it is independent of the tokenizer itself.
/// </summary>
public static class TextChunker
{
    private const int MaxWordBackoff = 8;

    /// <param name="text">The text the offsets point into.</param>
    /// <param name="tokens">Character offsets of each token of <paramref name="text"/>, in order, without special tokens.</param>
    public static IReadOnlyList<ChunkSpan> Split(string text, IReadOnlyList<(int Start, int End)> tokens, ChunkingOptions options) =>
        SplitTokens(text, tokens, options).Select(c => c.Span).ToList();

    /// <summary>As <see cref="Split"/>, with each chunk's tokens [<c>FirstToken</c>, <c>EndToken</c>) in <paramref name="tokens"/>, so a
    /// caller that tokenized the text can hand the chunks' tokens on without tokenizing them again.</summary>
    public static IReadOnlyList<(ChunkSpan Span, int FirstToken, int EndToken)> SplitTokens(string text, IReadOnlyList<(int Start, int End)> tokens, ChunkingOptions options)
    {
        options.Validate();
        int n = tokens.Count;
        if (n <= options.MaxTokens) return [(new ChunkSpan(0, text.Length), 0, n)];

        var chunks = new List<(ChunkSpan, int, int)>();
        int start = 0;
        while (true)
        {
            int end = Math.Min(start + options.MaxTokens, n);
            if (end < n) end = ChooseCut(text, tokens, start + options.MaxTokens / 2, end);
            chunks.Add((new ChunkSpan(start == 0 ? 0 : tokens[start].Start, end == n ? text.Length : tokens[end - 1].End), start, end));
            if (end == n) return chunks;

            // Back the next start up to a word start (a few pieces at most) so that a chunk does not open on a "##" continuation.
            int next = Math.Max(end - options.OverlapTokens, start + 1);
            for (int i = next; i > start + 1 && next - i < MaxWordBackoff; i--)
                if (IsWordBoundary(tokens, i)) { next = i; break; }
            start = next;
        }
    }

    /// <summary>The exclusive token index to cut at in (<paramref name="min"/>, <paramref name="max"/>]: a sentence end, else a word boundary, else <paramref name="max"/>.</summary>
    private static int ChooseCut(string text, IReadOnlyList<(int Start, int End)> tokens, int min, int max)
    {
        for (int e = max; e > min; e--)
            if (IsWordBoundary(tokens, e) && EndsSentence(text, tokens[e - 1])) return e;
        for (int e = max; e > min; e--)
            if (IsWordBoundary(tokens, e)) return e;
        return max;
    }

    /// <summary>True when whitespace (or anything untokenized) separates token <paramref name="i"/> from the one before it.</summary>
    private static bool IsWordBoundary(IReadOnlyList<(int Start, int End)> tokens, int i) =>
        i <= 0 || i >= tokens.Count || tokens[i].Start > tokens[i - 1].End;

    private static bool EndsSentence(string text, (int Start, int End) token) =>
        token.End > token.Start && text[token.End - 1] is '.' or '!' or '?' or '\n';
}
