using System.Collections.Frozen;
using System.Globalization;
using System.Reflection;

namespace Funnel.Tokenization;

/// <summary>
/// Per-code-point behaviour of Hugging Face's BERT normalizer and pre-tokenizer. HF classifies
/// characters with the old tables of the <c>unicode_categories</c> crate and maps case with Rust's
/// std, so .NET's newer Unicode data disagrees on a few hundred code points; the data here
/// (<c>BertUnicode.txt</c>) is probed from the real library by
/// <c>tools/tokenizer-reference/make-unicode-table.js</c>.
/// </summary>
internal sealed class BertUnicode
{
    [Flags]
    private enum Kind : byte
    {
        None = 0,
        Removed = 1,          // clean_text drops it
        CleanWhitespace = 2,  // clean_text turns it into ' '
        SplitWhitespace = 4,  // the pre-tokenizer splits on it and drops it
        Punctuation = 8,      // the pre-tokenizer isolates it
        Strips = 16,          // strip_accents changes it
        Lowers = 32,          // lowercase changes it
    }

    private const int HangulBase = 0xAC00, HangulCount = 11172;

    public static BertUnicode Instance { get; } = Load();

    private readonly Kind[] _bmp;
    private readonly (int Lo, int Hi, Kind Kind)[] _astralRanges;
    private readonly FrozenDictionary<int, int[]> _strip;
    private readonly FrozenDictionary<int, int[]> _lower;

    private BertUnicode(Kind[] bmp, (int, int, Kind)[] astralRanges, FrozenDictionary<int, int[]> strip, FrozenDictionary<int, int[]> lower)
    {
        _bmp = bmp;
        _astralRanges = astralRanges;
        _strip = strip;
        _lower = lower;
    }

    public bool IsRemoved(int cp) => (KindOf(cp) & Kind.Removed) != 0;
    public bool IsCleanWhitespace(int cp) => (KindOf(cp) & Kind.CleanWhitespace) != 0;
    public bool IsSplitWhitespace(int cp) => (KindOf(cp) & Kind.SplitWhitespace) != 0;
    public bool IsPunctuation(int cp) => (KindOf(cp) & Kind.Punctuation) != 0;

    /// <summary>HF's <c>is_chinese_char</c>: the CJK ideograph blocks BERT surrounds with spaces.</summary>
    public static bool IsChinese(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B920 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>strip_accents (NFD, then drop non-spacing marks): the code points <paramref name="cp"/> becomes, written to <paramref name="output"/>.</summary>
    public int StripAccents(int cp, Span<int> output)
    {
        if (cp - HangulBase is >= 0 and < HangulCount and int s)
        {
            // Unicode's algorithmic Hangul decomposition: syllable = L V (T).
            output[0] = 0x1100 + s / 588;
            output[1] = 0x1161 + s % 588 / 28;
            if (s % 28 == 0) return 2;
            output[2] = 0x11A7 + s % 28;
            return 3;
        }
        return Map(_strip, Kind.Strips, cp, output);
    }

    /// <summary>Rust's <c>char::to_lowercase</c> (one code point may become two, e.g. U+0130).</summary>
    public int Lowercase(int cp, Span<int> output) => Map(_lower, Kind.Lowers, cp, output);

    private int Map(FrozenDictionary<int, int[]> map, Kind kind, int cp, Span<int> output)
    {
        if ((KindOf(cp) & kind) == 0 || !map.TryGetValue(cp, out int[]? mapped))
        {
            output[0] = cp;
            return 1;
        }
        mapped.CopyTo(output);
        return mapped.Length;
    }

    private Kind KindOf(int cp)
    {
        if (cp < 0x10000) return _bmp[cp];
        Kind kind = Kind.None;
        foreach (var (lo, hi, k) in _astralRanges)
            if (cp >= lo && cp <= hi) kind |= k;
        if (_strip.ContainsKey(cp)) kind |= Kind.Strips;
        if (_lower.ContainsKey(cp)) kind |= Kind.Lowers;
        return kind;
    }

    private static BertUnicode Load()
    {
        var bmp = new Kind[0x10000];
        var astral = new List<(int, int, Kind)>();
        var strip = new Dictionary<int, int[]>();
        var lower = new Dictionary<int, int[]>();
        using Stream stream = typeof(BertUnicode).Assembly.GetManifestResourceStream("Funnel.Tokenization.BertUnicode.txt")
            ?? throw new InvalidOperationException("embedded resource BertUnicode.txt is missing from the Funnel assembly");
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            string[] parts = line.Split(' ');
            int first = int.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            int[] rest = parts[2..].Select(p => int.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            switch (parts[0])
            {
                case "R": AddRange(first, rest[0], Kind.Removed); break;
                case "W": AddRange(first, rest[0], Kind.CleanWhitespace); break;
                case "Z": AddRange(first, rest[0], Kind.SplitWhitespace); break;
                case "P": AddRange(first, rest[0], Kind.Punctuation); break;
                case "S": strip[first] = rest; Mark(first, Kind.Strips); break;
                case "L": lower[first] = rest; Mark(first, Kind.Lowers); break;
                default: throw new InvalidDataException($"BertUnicode.txt: unknown line '{line}'");
            }
        }
        return new BertUnicode(bmp, astral.ToArray(), strip.ToFrozenDictionary(), lower.ToFrozenDictionary());

        void AddRange(int lo, int hi, Kind kind)
        {
            for (int cp = lo; cp <= Math.Min(hi, 0xFFFF); cp++) bmp[cp] |= kind;
            if (hi > 0xFFFF) astral.Add((Math.Max(lo, 0x10000), hi, kind));
        }

        void Mark(int cp, Kind kind)
        {
            if (cp < 0x10000) bmp[cp] |= kind;
        }
    }
}
