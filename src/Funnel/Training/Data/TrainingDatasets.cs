using Funnel.Evaluation;
using Funnel.Retrieval;

namespace Funnel.Training.Data;

/// <summary>
/// A BEIR split as training pairs: one (query, positive) row per judgment with grade ≥ 1, in qrels order, the
/// document's title and text joined as the collections index them (<see cref="Pairs"/>, columns anchor and positive;
/// row i is query <see cref="QueryIds"/>[i] with document <see cref="PositiveIds"/>[i]). Keeps the corpus, the split's
/// judgments (<see cref="Qrels"/>, judged queries with text only) and those queries' texts, which hard-negative mining
/// and evaluation need.
/// </summary>
public sealed record RetrievalSplit(string Name, TrainingData Pairs, IReadOnlyList<Document> Corpus, IReadOnlyList<string> QueryIds,
    IReadOnlyList<string> PositiveIds, Qrels Qrels, IReadOnlyDictionary<string, string> Queries)
{
    /// <summary>The split restricted to its first <paramref name="count"/> judged queries (quicker evaluations).</summary>
    public RetrievalSplit FirstQueries(int count)
    {
        var keep = Qrels.QueryIds.Take(count).ToHashSet(StringComparer.Ordinal);
        var rows = Enumerable.Range(0, QueryIds.Count).Where(i => keep.Contains(QueryIds[i])).ToList();
        return new RetrievalSplit(Name, new TrainingData(Pairs.Source, Pairs.TextColumns, Pairs.LabelColumn, rows.Select(i => Pairs.Examples[i]).ToList()),
            Corpus, rows.Select(i => QueryIds[i]).ToList(), rows.Select(i => PositiveIds[i]).ToList(), Qrels.Restrict(keep),
            Queries.Where(q => keep.Contains(q.Key)).ToDictionary(q => q.Key, q => q.Value, StringComparer.Ordinal));
    }
}

/// <summary>The training sets Funnel reads besides files: BEIR splits and the STS benchmark.</summary>
public static class TrainingDatasets
{
    /// <summary>
    /// The STS benchmark's <c>sts-{split}.csv</c> (read by <see cref="StsBenchmark"/>) as (sentence1, sentence2, score/5)
    /// rows: the normalised scores sentence-transformers trains on.
    /// </summary>
    public static TrainingData StsBenchmark(string folder, string split) =>
        new(Funnel.Evaluation.StsBenchmark.SplitPath(folder, split), ["sentence1", "sentence2"], "score",
            Funnel.Evaluation.StsBenchmark.ReadSplit(folder, split).Select(p => new TrainingExample([p.Sentence1, p.Sentence2], [(float)(p.Score / 5)])).ToList());

    /// <summary>Reads a BEIR folder or zip's <paramref name="split"/> as (query, positive) pairs; see <see cref="RetrievalSplit"/>.</summary>
    public static async Task<RetrievalSplit> BeirAsync(string path, string split, CancellationToken ct = default)
    {
        using BeirDataset dataset = BeirDataset.Open(path);
        Qrels all = dataset.ReadQrels(split);
        var queries = (await dataset.ReadQueriesAsync(ct).ConfigureAwait(false)).ToDictionary(q => q.Id, q => q.Text, StringComparer.Ordinal);
        var corpus = new List<Document>();
        await foreach (Document d in dataset.ReadCorpusAsync(ct).ConfigureAwait(false)) corpus.Add(d);
        var texts = corpus.ToDictionary(d => d.Id, d => d.FullText, StringComparer.Ordinal);
        var examples = new List<TrainingExample>();
        var queryIds = new List<string>();
        var positiveIds = new List<string>();
        var judged = all.QueryIds.Where(q => queries.TryGetValue(q, out string? t) && t.Length > 0).ToList();
        foreach (string q in judged)
        {
            foreach (var (doc, grade) in all[q]!)
            {
                if (grade < 1 || !texts.TryGetValue(doc, out string? text) || text.Length == 0) continue;
                examples.Add(new TrainingExample([queries[q], text], []));
                queryIds.Add(q);
                positiveIds.Add(doc);
            }
        }
        string name = $"{dataset.Name} ({split})";
        if (examples.Count == 0) throw new DatasetFormatException(path, 0, $"split '{split}' has no judgment with grade ≥ 1 whose query and document have text");
        return new RetrievalSplit(name, new TrainingData(name, ["anchor", "positive"], null, examples), corpus, queryIds, positiveIds,
            all.Restrict(judged), judged.ToDictionary(q => q, q => queries[q], StringComparer.Ordinal));
    }
}
