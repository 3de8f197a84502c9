using System.Buffers;

namespace Funnel.Tokenization;

/// <summary>
/// A token matched verbatim in the input (HF's added tokens): in the raw text, or when
/// <paramref name="Normalized"/>, in the normalized text by its normalized content. LeftStrip /
/// RightStrip swallow the whitespace before / after it.
/// </summary>
public sealed record AddedToken(int Id, string Content, bool Special = true, bool LeftStrip = false, bool RightStrip = false, bool Normalized = false);

/// <summary>
/// Finds added tokens (such as a literal <c>[SEP]</c>) in text the way HF's added vocabulary does:
/// leftmost match first, the longest token at that position, optionally swallowing whitespace around it.
/// </summary>
internal sealed class AddedTokens
{
    private readonly AddedToken[] _byLengthDescending;
    private readonly SearchValues<char> _firstChars;

    public AddedTokens(IEnumerable<AddedToken> tokens)
    {
        _byLengthDescending = tokens.Where(t => t.Content.Length > 0).OrderByDescending(t => t.Content.Length).ToArray();
        _firstChars = SearchValues.Create(_byLengthDescending.Select(t => t.Content[0]).Distinct().ToArray());
    }

    public IReadOnlyList<AddedToken> Tokens => _byLengthDescending;

    /// <summary>
    /// The next added token at or after <paramref name="from"/>: where the matched span (with any stripped
    /// whitespace) starts and ends; false when none is left.
    /// </summary>
    public bool TryFindNext(ReadOnlySpan<char> text, int from, out AddedToken token, out int start, out int end)
    {
        BertUnicode unicode = BertUnicode.Instance;
        for (int i = from; i < text.Length; i++)
        {
            int next = text[i..].IndexOfAny(_firstChars);
            if (next < 0) break;
            i += next;
            foreach (AddedToken candidate in _byLengthDescending)
            {
                if (!text[i..].StartsWith(candidate.Content, StringComparison.Ordinal)) continue;
                token = candidate;
                start = i;
                end = i + candidate.Content.Length;
                if (candidate.LeftStrip)
                    while (start > from && unicode.IsSplitWhitespace(text[start - 1])) start--;
                if (candidate.RightStrip)
                    while (end < text.Length && unicode.IsSplitWhitespace(text[end])) end++;
                return true;
            }
        }
        token = null!;
        start = end = text.Length;
        return false;
    }
}
