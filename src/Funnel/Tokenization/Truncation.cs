namespace Funnel.Tokenization;

/// <summary>How many tokens of each sequence survive truncation, following HF's <c>truncate_encodings</c>.</summary>
internal static class Truncation
{
    /// <summary>
    /// Kept lengths for sequences of <paramref name="first"/> and <paramref name="second"/> tokens
    /// (second = -1 for a single sequence) under a budget of <paramref name="maxLength"/> tokens,
    /// special tokens already subtracted.
    /// </summary>
    public static (int First, int Second) KeptLengths(int first, int second, int maxLength, TruncationStrategy strategy)
    {
        bool isPair = second >= 0;
        int pairLength = Math.Max(second, 0);
        if (maxLength == 0) return (0, 0);
        int total = first + pairLength;
        if (total <= maxLength) return (first, pairLength);
        int toRemove = total - maxLength;
        switch (strategy)
        {
            case TruncationStrategy.LongestFirst when isPair:
            {
                // Not a one-token-at-a-time loop: the shorter side keeps all it can up to half of the
                // budget, the longer side takes the rest; when both exceed half, the budget is split
                // with the odd token going to the longer side (the second on ties).
                int n1 = first, n2 = second;
                bool swap = n1 > n2;
                if (swap) (n1, n2) = (n2, n1);
                n2 = n1 > maxLength ? n1 : Math.Max(n1, maxLength - n1);
                if (n1 + n2 > maxLength)
                {
                    n1 = maxLength / 2;
                    n2 = n1 + maxLength % 2;
                }
                return swap ? (n2, n1) : (n1, n2);
            }
            case TruncationStrategy.LongestFirst:
                return (first - toRemove, 0);
            case TruncationStrategy.OnlyFirst when first > toRemove:
                return (first - toRemove, pairLength);
            case TruncationStrategy.OnlySecond when isPair && second > toRemove:
                return (first, second - toRemove);
            default:
                throw new ArgumentException(
                    $"truncation strategy {strategy} cannot fit {first}{(isPair ? $" + {second}" : "")} tokens into {maxLength}: the sequence it may cut is too short");
        }
    }

    /// <summary>
    /// HF 0.23 stops tokenizing a sequence once it holds the truncation max_length (specials included),
    /// at a word boundary: the shortest run of whole words from the kept side with at least
    /// <paramref name="cap"/> tokens. This matters for pairs, where it changes which side is the longer.
    /// </summary>
    public static ReadOnlySpan<Token> CapWholeWords(ReadOnlySpan<Token> tokens, int cap, TruncationSide side)
    {
        if (tokens.Length <= cap) return tokens;
        if (side == TruncationSide.Right)
        {
            int end = cap;
            while (end < tokens.Length && !tokens[end].WordStart) end++;
            return tokens[..end];
        }
        int start = tokens.Length - cap;
        while (start > 0 && !tokens[start].WordStart) start--;
        return tokens[start..];
    }

    /// <summary>Keeps <paramref name="length"/> tokens from the side that truncation does not cut.</summary>
    public static ReadOnlySpan<Token> Keep(ReadOnlySpan<Token> tokens, int length, TruncationSide side) =>
        side == TruncationSide.Right ? tokens[..length] : tokens[(tokens.Length - length)..];
}
