using System.Collections.Frozen;
using System.IO.Hashing;
using System.Text;

namespace Funnel.Retrieval.Lexical;

/// <summary>
/// Text → index terms, as Lucene's (and Anserini's default) <c>EnglishAnalyzer</c> does it:
/// <see cref="StandardTokenizer"/> → possessive removal (trailing 's / ’s, <c>EnglishPossessiveFilter</c>) →
/// lower-case → stop words (<see cref="LuceneStopWords"/>) → <see cref="PorterStemmer"/>. Thread-safe.
/// </summary>
public sealed class EnglishAnalyzer
{
    /// <summary>Lucene's <c>EnglishAnalyzer.ENGLISH_STOP_WORDS_SET</c>, which Anserini uses by default.</summary>
    public static IReadOnlySet<string> LuceneStopWords { get; } = FrozenSet.Create(StringComparer.Ordinal,
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
        "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with");

    private readonly FrozenSet<string> _stopWords;
    private readonly FrozenSet<string>.AlternateLookup<ReadOnlySpan<char>> _stopLookup;
    private readonly bool _stem;

    /// <param name="stopWords">Lower-case stop words; null means <see cref="LuceneStopWords"/>, empty means none.</param>
    /// <param name="stem">Whether to apply the Porter stemmer.</param>
    public EnglishAnalyzer(IEnumerable<string>? stopWords = null, bool stem = true)
    {
        _stopWords = (stopWords ?? LuceneStopWords).ToFrozenSet(StringComparer.Ordinal);
        _stopLookup = _stopWords.GetAlternateLookup<ReadOnlySpan<char>>();
        _stem = stem;
        Id = BuildId(_stopWords, stem);
    }

    /// <summary>The stop words removed after lower-casing.</summary>
    public IReadOnlySet<string> StopWords => _stopWords;

    /// <summary>Whether terms are Porter-stemmed.</summary>
    public bool Stems => _stem;

    /// <summary>
    /// Identifies this configuration (stemmer and stop list) so that an index built with one analyzer is never
    /// queried with another: e.g. <c>english/porter/stop:…</c>.
    /// </summary>
    public string Id { get; }

    /// <summary>The terms of <paramref name="text"/>, in order, duplicates kept.</summary>
    public List<string> Analyze(ReadOnlySpan<char> text)
    {
        var terms = new List<string>();
        Analyze(text, terms);
        return terms;
    }

    /// <summary>Appends the terms of <paramref name="text"/> to <paramref name="terms"/>.</summary>
    public void Analyze(ReadOnlySpan<char> text, List<string> terms)
    {
        var ranges = StandardTokenizer.Tokenize(text);
        Span<char> buffer = stackalloc char[StandardTokenizer.MaxTokenLength];
        foreach (var (start, length) in ranges)
        {
            var token = StripPossessive(text.Slice(start, length));
            if (token.IsEmpty) continue;
            Span<char> term = buffer[..token.ToLowerInvariant(buffer)];
            if (_stopLookup.Contains(term)) continue;
            if (_stem) term = term[..PorterStemmer.Stem(term)];
            terms.Add(new string(term));
        }
    }

    // EnglishPossessiveFilter runs before lower-casing, hence the 'S'.
    private static ReadOnlySpan<char> StripPossessive(ReadOnlySpan<char> token) =>
        token.Length >= 2 && token[^2] is '\'' or '\u2019' or '\uFF07' && token[^1] is 's' or 'S' ? token[..^2] : token;

    private static string BuildId(FrozenSet<string> stopWords, bool stem)
    {
        string stop = ReferenceEquals(stopWords, LuceneStopWords) || stopWords.SetEquals(LuceneStopWords)
            ? "lucene"
            : stopWords.Count == 0 ? "none" : XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(string.Join('\n', stopWords.Order(StringComparer.Ordinal)))).ToString("x16");
        return $"english/{(stem ? "porter" : "nostem")}/stop:{stop}";
    }
}
