namespace Funnel.Tokenization;

/// <summary>
/// Hugging Face's <c>BertPreTokenizer</c>: split on whitespace (dropped), then isolate every
/// punctuation character (ASCII punctuation and Unicode P*, as HF's tables define them).
/// </summary>
internal static class BertPreTokenizer
{
    /// <summary>
    /// Calls <paramref name="model"/> for each word of normalized units [from, to), stopping before a
    /// word once <paramref name="tokens"/> holds <paramref name="wordCap"/> tokens.
    /// </summary>
    public static void Split(in NormalizedText normalized, int from, int to, WordPiece model, ref TokenBuffer tokens, int wordCap)
    {
        BertUnicode unicode = BertUnicode.Instance;
        ReadOnlySpan<char> text = normalized.Chars[..to];
        int wordStart = -1;
        for (int i = from; i < text.Length;)
        {
            int cp = text[i];
            int width = 1;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                cp = char.ConvertToUtf32(text[i], text[i + 1]);
                width = 2;
            }
            bool space = unicode.IsSplitWhitespace(cp);
            if (space || unicode.IsPunctuation(cp))
            {
                if (wordStart >= 0 && tokens.Count < wordCap) model.Tokenize(text, wordStart, i, ref tokens, normalized);
                wordStart = -1;
                if (!space && tokens.Count < wordCap) model.Tokenize(text, i, i + width, ref tokens, normalized);
                if (tokens.Count >= wordCap) return;
            }
            else if (wordStart < 0)
            {
                wordStart = i;
            }
            i += width;
        }
        if (wordStart >= 0 && tokens.Count < wordCap) model.Tokenize(text, wordStart, text.Length, ref tokens, normalized);
    }
}
