using System.Text.Json;
using Funnel.Retrieval;

namespace Funnel.Evaluation;

/// <summary>A first-stage candidate with its text, as shipped in a rerank file.</summary>
public sealed record RerankCandidate(string DocId, string Text, int Rank, double Score);

/// <summary>A query with its first-stage candidates in the shipped order.</summary>
public sealed record RerankQuery(string Id, string Text, IReadOnlyList<RerankCandidate> Candidates);

/// <summary>
/// A TREC Deep Learning rerank set: a folder with a RankGPT / rank_llm candidates file
/// (<c>retrieve_results_*.json</c>: <c>[{"query", "hits": [{"content", "qid", "docid", "rank", "score"}]}]</c>)
/// and TREC qrels (<c>qrels*.txt</c>). For binary measures TREC DL counts grade ≥ 2 as relevant.
/// </summary>
public sealed class TrecDlRerankSet
{
    /// <summary>TREC DL passage judgments: 0–3, "relevant" for binary measures from 2.</summary>
    public const int RelevanceThreshold = 2;

    private TrecDlRerankSet(string name, IReadOnlyList<RerankQuery> queries, Qrels qrels)
    {
        Name = name;
        Queries = queries;
        Qrels = qrels;
    }

    /// <summary>From the candidates file name, e.g. <c>dl19</c>.</summary>
    public string Name { get; }

    public IReadOnlyList<RerankQuery> Queries { get; }

    public Qrels Qrels { get; }

    /// <summary>True when <paramref name="folder"/> holds a candidates file.</summary>
    public static bool IsRerankSet(string folder) => Directory.Exists(folder) && Directory.EnumerateFiles(folder, "retrieve_results_*.json").Any();

    public static TrecDlRerankSet Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DatasetFormatException(folder, 0, "no such TREC DL folder");
        string candidates = Single(folder, "retrieve_results_*.json", "a candidates file retrieve_results_NAME.json");
        string qrels = Single(folder, "qrels*.txt", "a TREC qrels file qrels*.txt");
        string name = Path.GetFileNameWithoutExtension(candidates)["retrieve_results_".Length..];
        return new TrecDlRerankSet(name, ReadCandidates(candidates), Evaluation.Qrels.ReadTrec(qrels));
    }

    /// <summary>The shipped first-stage ranking as a run (the shipped scores; trec_eval orders by them).</summary>
    public Run FirstStageRun(string tag = "first-stage")
    {
        var run = new Run(tag);
        foreach (var query in Queries)
            foreach (var c in query.Candidates)
                run.Add(query.Id, c.DocId, c.Score);
        return run;
    }

    private static string Single(string folder, string pattern, string what)
    {
        var files = Directory.GetFiles(folder, pattern);
        return files.Length switch
        {
            1 => files[0],
            0 => throw new DatasetFormatException(folder, 0, $"expected {what}, found none"),
            _ => throw new DatasetFormatException(folder, 0, $"expected one {what}, found {files.Length}: {string.Join(", ", files.Select(Path.GetFileName))}"),
        };
    }

    private static List<RerankQuery> ReadCandidates(string path)
    {
        JsonDocument json;
        try
        {
            using var stream = File.OpenRead(path);
            json = JsonDocument.Parse(stream);
        }
        catch (JsonException e)
        {
            throw new DatasetFormatException(path, (e.LineNumber ?? -1) + 1, $"invalid JSON ({e.Message})");
        }
        using (json)
        {
            if (json.RootElement.ValueKind != JsonValueKind.Array) throw new DatasetFormatException(path, 0, "expected a JSON array of {\"query\", \"hits\"} objects");
            var queries = new List<RerankQuery>();
            int index = 0;
            foreach (var row in json.RootElement.EnumerateArray())
            {
                string where = $"query #{index++}";
                if (row.ValueKind != JsonValueKind.Object || !row.TryGetProperty("query", out var text) || text.ValueKind != JsonValueKind.String
                    || !row.TryGetProperty("hits", out var hits) || hits.ValueKind != JsonValueKind.Array)
                    throw new DatasetFormatException(path, 0, $"{where}: expected an object with string \"query\" and array \"hits\"");
                var candidates = new List<RerankCandidate>();
                string? queryId = null;
                foreach (var hit in hits.EnumerateArray())
                {
                    string hitWhere = $"{where}, hit #{candidates.Count}";
                    string qid = IdField(hit, "qid", path, hitWhere);
                    if (queryId != null && qid != queryId) throw new DatasetFormatException(path, 0, $"{hitWhere}: qid {qid} differs from the query's other hits ({queryId})");
                    queryId = qid;
                    if (!hit.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                        throw new DatasetFormatException(path, 0, $"{hitWhere}: missing string \"content\"");
                    if (!hit.TryGetProperty("score", out var score) || !score.TryGetDouble(out double s))
                        throw new DatasetFormatException(path, 0, $"{hitWhere}: missing number \"score\"");
                    int rank = hit.TryGetProperty("rank", out var r) && r.TryGetInt32(out int rv) ? rv : candidates.Count + 1;
                    candidates.Add(new RerankCandidate(IdField(hit, "docid", path, hitWhere), content.GetString()!, rank, s));
                }
                if (queryId == null) throw new DatasetFormatException(path, 0, $"{where}: no hits, so no query id");
                queries.Add(new RerankQuery(queryId, text.GetString()!, candidates));
            }
            return queries;
        }
    }

    private static string IdField(JsonElement hit, string name, string path, string where) =>
        hit.ValueKind == JsonValueKind.Object && hit.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.String or JsonValueKind.Number
            ? v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText()
            : throw new DatasetFormatException(path, 0, $"{where}: missing \"{name}\" (string or number)");
}

/// <summary>
/// A rerank set's shipped first stage as a pipeline's retriever: each query (by id) gets its shipped candidates in their order,
/// cut to <see cref="SearchOptions.Candidates"/>.
/// </summary>
public sealed class ShippedCandidates(IReadOnlyList<RerankQuery> queries) : IRetriever
{
    private readonly Dictionary<string, RerankQuery> _byId = queries.ToDictionary(q => q.Id, StringComparer.Ordinal);

    public Task<RetrievalBatch> RetrieveAsync(IReadOnlyList<RetrievalQuery> queries, CancellationToken cancellationToken = default)
    {
        var candidates = new IReadOnlyList<Candidate>[queries.Count];
        for (int q = 0; q < queries.Count; q++)
        {
            if (!_byId.TryGetValue(queries[q].Id, out RerankQuery? shipped))
                throw new ArgumentException($"query '{queries[q].Id}' has no shipped candidates", nameof(queries));
            IReadOnlySet<string>? exclude = queries[q].Options.Exclude;
            candidates[q] = shipped.Candidates.Where(c => exclude is null || !exclude.Contains(c.DocId)).Take(queries[q].Options.Candidates)
                .Select(c => new Candidate(c.DocId, c.Score) { Passage = c.Text, Bm25Score = (float)c.Score, Bm25Rank = c.Rank }).ToList();
        }
        return Task.FromResult(new RetrievalBatch(candidates, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero));
    }
}
