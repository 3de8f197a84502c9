using System.Buffers;
using System.Text;

namespace Funnel.Tokenization;

/// <summary>
/// Hugging Face's <c>BertNormalizer</c>: clean_text, handle_chinese_chars, strip_accents, lowercase,
/// in that order. Every step maps one code point to zero or more, so the normalizer runs code point by
/// code point and records, for each output char, the span of the input it came from (HF's alignments,
/// in UTF-16 units).
/// </summary>
internal sealed record BertNormalizer(bool CleanText = true, bool HandleChineseChars = true, bool? StripAccents = null, bool Lowercase = true)
{
    // Canonical decompositions have at most 4 code points and case mappings at most 3.
    private const int MaxExpansion = 4;

    /// <summary>The normalized form of <paramref name="text"/>.</summary>
    public string Normalize(string text)
    {
        var normalized = new NormalizedText(text.Length + 16);
        try
        {
            Normalize(text, 0, ref normalized);
            return normalized.Chars.ToString();
        }
        finally
        {
            normalized.Dispose();
        }
    }

    internal void Normalize(ReadOnlySpan<char> text, int offset, ref NormalizedText output)
    {
        bool strip = StripAccents ?? Lowercase;
        BertUnicode unicode = BertUnicode.Instance;
        Span<int> stripped = stackalloc int[MaxExpansion];
        Span<int> lowered = stackalloc int[MaxExpansion];
        output.EnsureCapacity(output.Length + text.Length);
        for (int i = 0; i < text.Length;)
        {
            int start = offset + i;
            char c = text[i];
            if (c < 0x80)
            {
                // ASCII: no accents, one-to-one case mapping.
                i++;
                if (CleanText && unicode.IsRemoved(c)) continue;
                if (CleanText && unicode.IsCleanWhitespace(c)) c = ' ';
                else if (Lowercase && (uint)(c - 'A') <= 'Z' - 'A') c = (char)(c | 0x20);
                output.Append(c, start, start + 1);
                continue;
            }

            int cp;
            if (Rune.DecodeFromUtf16(text[i..], out Rune rune, out int consumed) == OperationStatus.Done) cp = rune.Value;
            else cp = 0xFFFD; // a lone surrogate: Rust strings cannot hold one; HF sees U+FFFD
            i += consumed;
            int end = offset + i;

            if (CleanText)
            {
                if (unicode.IsRemoved(cp)) continue;
                if (unicode.IsCleanWhitespace(cp)) cp = ' ';
            }
            bool chinese = HandleChineseChars && BertUnicode.IsChinese(cp);
            if (chinese) output.Append(' ', start, end);

            int count = 1;
            stripped[0] = cp;
            if (strip) count = unicode.StripAccents(cp, stripped);
            for (int s = 0; s < count; s++)
            {
                int lowerCount = 1;
                lowered[0] = stripped[s];
                if (Lowercase) lowerCount = unicode.Lowercase(stripped[s], lowered);
                for (int l = 0; l < lowerCount; l++) output.Append(lowered[l], start, end);
            }

            if (chinese) output.Append(' ', start, end);
        }
    }
}

/// <summary>
/// Normalized text with, for each UTF-16 unit, the [start, end) span of the original text it came from.
/// Buffers come from the shared pool; call <see cref="Dispose"/>.
/// </summary>
internal struct NormalizedText : IDisposable
{
    private char[] _chars;
    private int[] _starts;
    private int[] _ends;

    public NormalizedText(int capacity)
    {
        capacity = Math.Max(capacity, 16);
        _chars = ArrayPool<char>.Shared.Rent(capacity);
        _starts = ArrayPool<int>.Shared.Rent(capacity);
        _ends = ArrayPool<int>.Shared.Rent(capacity);
        Length = 0;
    }

    public int Length { get; private set; }

    public readonly ReadOnlySpan<char> Chars => _chars.AsSpan(0, Length);

    /// <summary>The original span covered by normalized units [start, end).</summary>
    public readonly (int Start, int End) OriginalSpan(int start, int end) => (_starts[start], _ends[end - 1]);

    public void Clear() => Length = 0;

    public void Append(char c, int originalStart, int originalEnd)
    {
        if (Length == _chars.Length) EnsureCapacity(Length + 1);
        _chars[Length] = c;
        _starts[Length] = originalStart;
        _ends[Length] = originalEnd;
        Length++;
    }

    public void Append(int codePoint, int originalStart, int originalEnd)
    {
        if (codePoint < 0x10000)
        {
            Append((char)codePoint, originalStart, originalEnd);
            return;
        }
        Append((char)((codePoint - 0x10000 >> 10) + 0xD800), originalStart, originalEnd);
        Append((char)((codePoint - 0x10000 & 0x3FF) + 0xDC00), originalStart, originalEnd);
    }

    public void EnsureCapacity(int capacity)
    {
        if (capacity <= _chars.Length) return;
        int size = Math.Max(capacity, _chars.Length * 2);
        Grow(ref _chars, size, Length);
        Grow(ref _starts, size, Length);
        Grow(ref _ends, size, Length);
    }

    private static void Grow<T>(ref T[] array, int size, int used)
    {
        T[] bigger = ArrayPool<T>.Shared.Rent(size);
        array.AsSpan(0, used).CopyTo(bigger);
        ArrayPool<T>.Shared.Return(array);
        array = bigger;
    }

    public void Dispose()
    {
        ArrayPool<char>.Shared.Return(_chars);
        ArrayPool<int>.Shared.Return(_starts);
        ArrayPool<int>.Shared.Return(_ends);
        _chars = [];
        _starts = [];
        _ends = [];
    }
}
