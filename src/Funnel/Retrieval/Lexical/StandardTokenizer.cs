using System.Buffers;
using System.Globalization;
using System.Text;

namespace Funnel.Retrieval.Lexical;

/// <summary>
/// Word tokenisation in the spirit of Lucene's <c>StandardTokenizer</c> (Unicode UAX #29 word boundaries):
/// runs of letters and digits form words; a letter run keeps an inner apostrophe, period or colon between letters
/// ("don't", "e.g", "u.s.a"); a number keeps an inner period, comma or apostrophe between digits ("3.5", "1,000");
/// letters and digits join ("p53"); underscores join words; combining marks and format characters stay inside
/// the word they follow; Han ideographs and Hiragana are one token per character. Punctuation, symbols and
/// whitespace separate words and are dropped. Tokens longer than <see cref="MaxTokenLength"/> are split.
/// </summary>
internal static class StandardTokenizer
{
    /// <summary>Lucene's default maximum token length.</summary>
    public const int MaxTokenLength = 255;

    private enum Kind : byte { Other, Letter, Digit, Ideographic, Katakana, ExtendNumLet, MidLetter, MidNum, MidNumLet, Extend }

    /// <summary>The (start, length) character ranges of the words of <paramref name="text"/>, in order.</summary>
    public static List<(int Start, int Length)> Tokenize(ReadOnlySpan<char> text)
    {
        var tokens = new List<(int Start, int Length)>();
        Tokenize(text, tokens);
        return tokens;
    }

    /// <summary>Appends the (start, length) ranges of the words of <paramref name="text"/> to <paramref name="tokens"/>.</summary>
    public static void Tokenize(ReadOnlySpan<char> text, List<(int Start, int Length)> tokens)
    {
        int i = 0;
        while (i < text.Length)
        {
            Kind kind = Classify(text, i, out int width);
            if (kind == Kind.Ideographic)
            {
                tokens.Add((i, width));
                i += width;
                continue;
            }
            if (kind is not (Kind.Letter or Kind.Digit or Kind.Katakana or Kind.ExtendNumLet))
            {
                i += width;
                continue;
            }

            int start = i;
            Kind last = kind;
            bool hasWordChar = kind != Kind.ExtendNumLet;
            i += width;
            while (i < text.Length)
            {
                Kind next = Classify(text, i, out int w);
                if (next == Kind.Extend)
                {
                    i += w;
                    continue;
                }
                if (Joins(last, next))
                {
                    last = next;
                    hasWordChar |= next != Kind.ExtendNumLet;
                    i += w;
                    continue;
                }
                if (next is Kind.MidLetter or Kind.MidNum or Kind.MidNumLet && i + w < text.Length)
                {
                    int after = i + w;
                    Kind following = Classify(text, after, out int fw);
                    bool letters = last == Kind.Letter && following == Kind.Letter && next != Kind.MidNum;
                    bool digits = last == Kind.Digit && following == Kind.Digit && next != Kind.MidLetter;
                    if (letters || digits)
                    {
                        i = after + fw;
                        continue;
                    }
                }
                break;
            }
            if (!hasWordChar) continue;
            for (int s = start; s < i; s += MaxTokenLength)
                tokens.Add((s, Math.Min(MaxTokenLength, i - s)));
        }
    }

    private static bool Joins(Kind left, Kind right) => (left, right) switch
    {
        (Kind.Letter or Kind.Digit, Kind.Letter or Kind.Digit) => true,
        (Kind.Katakana, Kind.Katakana) => true,
        (Kind.Letter or Kind.Digit or Kind.Katakana or Kind.ExtendNumLet, Kind.ExtendNumLet) => true,
        (Kind.ExtendNumLet, Kind.Letter or Kind.Digit or Kind.Katakana) => true,
        _ => false,
    };

    private static Kind Classify(ReadOnlySpan<char> text, int index, out int width)
    {
        char c = text[index];
        width = 1;
        if (c < 0x80)
        {
            if (char.IsAsciiLetter(c)) return Kind.Letter;
            if (char.IsAsciiDigit(c)) return Kind.Digit;
            return c switch
            {
                '_' => Kind.ExtendNumLet,
                ':' => Kind.MidLetter,
                ',' or ';' => Kind.MidNum,
                '.' or '\'' => Kind.MidNumLet,
                _ => Kind.Other,
            };
        }
        if (Rune.DecodeFromUtf16(text[index..], out Rune rune, out width) != OperationStatus.Done) return Kind.Other;
        int v = rune.Value;
        switch (v)
        {
            case 0x00B7 or 0x0387 or 0x05F4 or 0x2027 or 0xFE13 or 0xFE55 or 0xFF1A: return Kind.MidLetter;
            case 0x037E or 0x0589 or 0x060C or 0x060D or 0x066C or 0x07F8 or 0x2044 or 0xFE10 or 0xFE14 or 0xFE50 or 0xFE54 or 0xFF0C or 0xFF1B: return Kind.MidNum;
            case 0x2018 or 0x2019 or 0x2024 or 0xFE52 or 0xFF07 or 0xFF0E: return Kind.MidNumLet;
            case 0x30FC or 0xFF70: return Kind.Katakana; // prolonged sound marks continue Katakana words
        }
        if (v is >= 0x3040 and <= 0x309F) return Kind.Ideographic; // Hiragana
        if (v is >= 0x30A0 and <= 0x30FF or >= 0x31F0 and <= 0x31FF or >= 0xFF66 and <= 0xFF9F) return Kind.Katakana;
        if (IsHan(v)) return Kind.Ideographic;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber => Kind.Letter,
            UnicodeCategory.DecimalDigitNumber => Kind.Digit,
            UnicodeCategory.ConnectorPunctuation => Kind.ExtendNumLet,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.Format => Kind.Extend,
            _ => Kind.Other,
        };
    }

    private static bool IsHan(int v) =>
        v is >= 0x2E80 and <= 0x2FDF // radicals
            or >= 0x3005 and <= 0x3007
            or >= 0x3021 and <= 0x3029
            or >= 0x3400 and <= 0x4DBF
            or >= 0x4E00 and <= 0x9FFF
            or >= 0xF900 and <= 0xFAFF
            or >= 0x20000 and <= 0x3FFFF;
}
