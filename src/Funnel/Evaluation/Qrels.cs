namespace Funnel.Evaluation;

/// <summary>
/// Relevance judgments: query id → document id → grade. A negative grade means "in the pool but unjudged"
/// (trec_eval's convention): such a document counts neither as relevant nor as judged non-relevant.
/// </summary>
public sealed class Qrels
{
    private readonly Dictionary<string, Dictionary<string, int>> _byQuery = new(StringComparer.Ordinal);

    /// <summary>Query ids in the order they were first added.</summary>
    public IReadOnlyCollection<string> QueryIds => _byQuery.Keys;

    /// <summary>Number of (query, document) judgments.</summary>
    public int Count => _byQuery.Values.Sum(j => j.Count);

    /// <summary>Adds a judgment; judging the same document twice for a query is an error (as in trec_eval).</summary>
    public void Add(string queryId, string docId, int grade)
    {
        if (!_byQuery.TryGetValue(queryId, out var judgments)) _byQuery.Add(queryId, judgments = new(StringComparer.Ordinal));
        if (!judgments.TryAdd(docId, grade))
            throw new ArgumentException($"document '{docId}' is judged twice for query '{queryId}'", nameof(docId));
    }

    /// <summary>The judgments of <paramref name="queryId"/>, or null when the query is not judged.</summary>
    public IReadOnlyDictionary<string, int>? this[string queryId] => _byQuery.GetValueOrDefault(queryId);

    /// <summary>The judgments of <paramref name="queryIds"/> only (e.g. to evaluate a sample of the queries).</summary>
    public Qrels Restrict(IEnumerable<string> queryIds)
    {
        var subset = new Qrels();
        foreach (string queryId in queryIds)
            if (_byQuery.TryGetValue(queryId, out var judgments) && !subset._byQuery.ContainsKey(queryId))
                subset._byQuery.Add(queryId, new Dictionary<string, int>(judgments, StringComparer.Ordinal));
        return subset;
    }

    /// <summary>Reads TREC qrels (<c>qid iter docid grade</c>, whitespace-separated; the iter column is ignored).</summary>
    public static Qrels ReadTrec(string path)
    {
        using var reader = TextFiles.OpenText(path);
        return ReadTrec(reader, path);
    }

    public static Qrels ReadTrec(TextReader reader, string source)
    {
        var qrels = new Qrels();
        foreach (var (lineNumber, fields) in TextFiles.ReadFields(reader, source, separators: null))
        {
            if (fields.Length != 4) throw new DatasetFormatException(source, lineNumber, $"expected 4 fields 'qid iter docid grade', found {fields.Length}");
            qrels.AddParsed(source, lineNumber, fields[0], fields[2], fields[3]);
        }
        return qrels;
    }

    /// <summary>Reads BEIR qrels: a TSV with the header <c>query-id corpus-id score</c>.</summary>
    public static Qrels ReadBeirTsv(TextReader reader, string source)
    {
        var qrels = new Qrels();
        bool header = true;
        foreach (var (lineNumber, fields) in TextFiles.ReadFields(reader, source, separators: ['\t']))
        {
            if (fields.Length != 3) throw new DatasetFormatException(source, lineNumber, $"expected 3 tab-separated fields 'query-id corpus-id score', found {fields.Length}");
            if (header)
            {
                header = false;
                if (!int.TryParse(fields[2], out _)) continue; // the header line
            }
            qrels.AddParsed(source, lineNumber, fields[0], fields[1], fields[2]);
        }
        return qrels;
    }

    private void AddParsed(string source, long lineNumber, string queryId, string docId, string grade)
    {
        if (!int.TryParse(grade, System.Globalization.NumberStyles.AllowLeadingSign, null, out int value))
            throw new DatasetFormatException(source, lineNumber, $"grade '{grade}' is not an integer");
        if (_byQuery.TryGetValue(queryId, out var judgments) && judgments.ContainsKey(docId))
            throw new DatasetFormatException(source, lineNumber, $"document '{docId}' is judged twice for query '{queryId}'");
        Add(queryId, docId, value);
    }

    /// <summary>Writes TREC qrels (<c>qid 0 docid grade</c>) atomically.</summary>
    public void WriteTrec(string path) => TextFiles.WriteAtomic(path, writer =>
    {
        foreach (var (queryId, judgments) in _byQuery)
            foreach (var (docId, grade) in judgments)
                writer.Write($"{queryId} 0 {docId} {grade}\n");
    });
}
