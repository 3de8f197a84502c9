using System.Globalization;

namespace Funnel.Evaluation;

/// <summary>One retrieved document of a ranking; a higher score is better.</summary>
public readonly record struct ScoredDocument(string DocId, double Score);

/// <summary>
/// A retrieval run: per query, scored documents. The order of a query's ranking is trec_eval's: score descending,
/// ties broken by document id descending (<c>strcmp</c>, i.e. ordinal order); the rank column of a TREC run file is
/// ignored, exactly as trec_eval ignores it.
/// </summary>
public sealed class Run(string tag = "funnel")
{
    private readonly Dictionary<string, Dictionary<string, double>> _byQuery = new(StringComparer.Ordinal);

    /// <summary>trec_eval's ranking order.</summary>
    public static IComparer<ScoredDocument> TrecEvalOrder { get; } = Comparer<ScoredDocument>.Create((x, y) =>
    {
        int c = y.Score.CompareTo(x.Score);
        return c != 0 ? c : string.CompareOrdinal(y.DocId, x.DocId);
    });

    /// <summary>The run tag written in the last column of a TREC run file.</summary>
    public string Tag { get; } = tag;

    /// <summary>Query ids in the order they were first added.</summary>
    public IReadOnlyCollection<string> QueryIds => _byQuery.Keys;

    /// <summary>Adds a scored document; the same document twice for one query is an error (trec_eval refuses such runs).</summary>
    public void Add(string queryId, string docId, double score)
    {
        if (double.IsNaN(score)) throw new ArgumentException($"score of document '{docId}' for query '{queryId}' is NaN", nameof(score));
        if (!_byQuery.TryGetValue(queryId, out var docs)) _byQuery.Add(queryId, docs = new(StringComparer.Ordinal));
        if (!docs.TryAdd(docId, score))
            throw new ArgumentException($"document '{docId}' appears twice in the ranking of query '{queryId}'", nameof(docId));
    }

    public void Add(string queryId, IEnumerable<ScoredDocument> documents)
    {
        foreach (var d in documents) Add(queryId, d.DocId, d.Score);
    }

    /// <summary>The ranking of <paramref name="queryId"/> in trec_eval order (empty when the query has none).</summary>
    public ScoredDocument[] Ranking(string queryId)
    {
        if (!_byQuery.TryGetValue(queryId, out var docs)) return [];
        var ranking = docs.Select(d => new ScoredDocument(d.Key, d.Value)).ToArray();
        Array.Sort(ranking, TrecEvalOrder);
        return ranking;
    }

    /// <summary>Reads a TREC run file (<c>qid Q0 docid rank score tag</c>); the tag of the first line becomes <see cref="Tag"/>.</summary>
    public static Run ReadTrec(string path)
    {
        using var reader = TextFiles.OpenText(path);
        return ReadTrec(reader, path);
    }

    public static Run ReadTrec(TextReader reader, string source)
    {
        Run? run = null;
        foreach (var (lineNumber, fields) in TextFiles.ReadFields(reader, source, separators: null))
        {
            if (fields.Length != 6) throw new DatasetFormatException(source, lineNumber, $"expected 6 fields 'qid Q0 docid rank score tag', found {fields.Length}");
            if (!double.TryParse(fields[4], NumberStyles.Float, CultureInfo.InvariantCulture, out double score) || double.IsNaN(score))
                throw new DatasetFormatException(source, lineNumber, $"score '{fields[4]}' is not a number");
            run ??= new Run(fields[5]);
            if (run._byQuery.TryGetValue(fields[0], out var docs) && docs.ContainsKey(fields[2]))
                throw new DatasetFormatException(source, lineNumber, $"document '{fields[2]}' appears twice for query '{fields[0]}'");
            run.Add(fields[0], fields[2], score);
        }
        return run ?? new Run();
    }

    /// <summary>Writes a TREC run file atomically, each ranking in trec_eval order with ranks from 1.</summary>
    public void WriteTrec(string path) => TextFiles.WriteAtomic(path, writer =>
    {
        foreach (string queryId in _byQuery.Keys)
        {
            var ranking = Ranking(queryId);
            for (int i = 0; i < ranking.Length; i++)
                writer.Write(string.Create(CultureInfo.InvariantCulture, $"{queryId} Q0 {ranking[i].DocId} {i + 1} {ranking[i].Score:R} {Tag}\n"));
        }
    });
}
