using Funnel.Index;
using Funnel.Inference;
using Funnel.Retrieval;
using Funnel.Retrieval.Lexical;

namespace Funnel.Training.Data;

/// <summary>Which retrievers propose hard negatives.</summary>
[Flags]
public enum NegativeSources
{
    /// <summary>BM25 over the corpus.</summary>
    Bm25 = 1,
    /// <summary>Exact cosine search with a bi-encoder.</summary>
    Dense = 2,
}

/// <summary>How hard negatives are chosen, with the options of sentence-transformers' <c>mine_hard_negatives</c>.</summary>
public sealed record HardNegativeOptions
{
    /// <summary>Negatives per row; rows for which fewer qualify are dropped (as mine_hard_negatives drops them).</summary>
    public int Count { get; init; } = 1;

    /// <summary>range_min: skip the first ranks (the nearest documents are the likeliest unjudged positives).</summary>
    public int RangeMin { get; init; }

    /// <summary>range_max: consider ranks below this only.</summary>
    public int RangeMax { get; init; } = 50;

    /// <summary>absolute_margin: a negative must score at most the positive's score minus this.</summary>
    public double? AbsoluteMargin { get; init; }

    /// <summary>relative_margin: a negative must score at most positive − |positive|·this.</summary>
    public double? RelativeMargin { get; init; }

    public NegativeSources Sources { get; init; } = NegativeSources.Bm25 | NegativeSources.Dense;

    /// <summary>"top" (false): the first qualifying candidates; "random" (true): a seeded sample of them.</summary>
    public bool Random { get; init; }

    public int Seed { get; init; }

    internal void Validate()
    {
        if (Count < 1) throw new ArgumentOutOfRangeException(nameof(Count), Count, "the negative count must be at least 1");
        if (RangeMin < 0 || RangeMax <= RangeMin) throw new ArgumentException($"the negative rank range [{RangeMin}, {RangeMax}) is empty");
        if (RangeMax - RangeMin < Count) throw new ArgumentException($"the rank range [{RangeMin}, {RangeMax}) holds fewer than {Count} negatives");
        if (Sources == 0) throw new ArgumentException("no negative source (bm25, dense or both)");
    }
}

/// <summary>What mining produced: the rows with their negatives, and how many rows were dropped for want of enough.</summary>
public sealed record MinedNegatives(TrainingData Data, int Dropped, string Summary);

/// <summary>
/// Hard-negative mining as sentence-transformers' <c>mine_hard_negatives</c> does it, from BM25 and/or a bi-encoder:
/// for each (anchor, positive) row the corpus is ranked for the anchor; documents judged relevant to it are removed;
/// ranks outside [range_min, range_max) and candidates within the margin of the positive's own score are skipped;
/// <see cref="HardNegativeOptions.Count"/> are taken from what is left (the best, or a seeded sample), alternating
/// between the sources when both are used. A negative is never a document judged relevant to the anchor, nor a text
/// equal to its positive.
/// </summary>
public static class HardNegativeMiner
{
    /// <summary>Mines a BEIR split: the corpus is the split's corpus, the relevant documents its judgments (grade ≥ 1).</summary>
    public static MinedNegatives Mine(RetrievalSplit split, HardNegativeOptions options, SentenceEncoder? encoder, CancellationToken ct = default)
    {
        var relevant = split.QueryIds.Distinct().ToDictionary(q => q,
            q => split.Qrels[q]!.Where(j => j.Value >= 1).Select(j => j.Key).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);
        var rows = split.Pairs.Examples.Select((e, i) => new Row(e, split.PositiveIds[i], relevant[split.QueryIds[i]])).ToList();
        return Mine(split.Pairs, split.Corpus.Select(d => (d.Id, d.FullText)).ToList(), rows, options, encoder, ct);
    }

    /// <summary>Mines (anchor, positive) rows of a file: the corpus is every distinct positive (and existing negative)
    /// text, and the texts that are positives of the same anchor are its relevant documents.</summary>
    public static MinedNegatives Mine(TrainingData pairs, HardNegativeOptions options, SentenceEncoder? encoder, CancellationToken ct = default)
    {
        var corpus = pairs.Examples.SelectMany(e => e.Texts.Skip(1)).Distinct(StringComparer.Ordinal).Select(t => (t, t)).ToList();
        var positives = pairs.Examples.GroupBy(e => e.Texts[0], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(e => e.Texts[1]).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);
        var rows = pairs.Examples.Select(e => new Row(e, e.Texts[1], positives[e.Texts[0]])).ToList();
        return Mine(pairs, corpus, rows, options, encoder, ct);
    }

    private sealed record Row(TrainingExample Example, string PositiveId, HashSet<string> Relevant)
    {
        public string Anchor => Example.Texts[0];
    }

    private static MinedNegatives Mine(TrainingData data, List<(string Id, string Text)> corpus, List<Row> rows, HardNegativeOptions options,
        SentenceEncoder? encoder, CancellationToken ct)
    {
        options.Validate();
        if (data.Examples.Any(e => e.Texts.Count != 2))
            throw new ArgumentException($"{data.Source}: mining needs (anchor, positive) rows; these have {data.TextColumns.Count} text columns");
        if (options.Sources.HasFlag(NegativeSources.Dense) && encoder == null)
            throw new ArgumentException("dense hard negatives need a bi-encoder to rank the corpus with");
        var texts = corpus.ToDictionary(c => c.Id, c => c.Text, StringComparer.Ordinal);
        var candidateLists = new List<List<(string Id, double Score)>[]>();
        if (options.Sources.HasFlag(NegativeSources.Bm25)) candidateLists.Add(Bm25Candidates(corpus, rows, options, ct));
        if (options.Sources.HasFlag(NegativeSources.Dense)) candidateLists.Add(DenseCandidates(corpus, rows, options, encoder!, ct));

        var mined = new List<TrainingExample>();
        int dropped = 0;
        for (int r = 0; r < rows.Count; r++)
        {
            var random = SeededRandom.For((ulong)options.Seed, "hard negatives", r);
            var perSource = candidateLists.Select(lists => lists[r].Select(c => c.Id).ToList()).ToList();
            List<string> chosen = options.Random
                ? random.Sample(Interleave(perSource), options.Count)
                : Interleave(perSource).Take(options.Count).ToList();
            if (chosen.Count < options.Count)
            {
                dropped++;
                continue;
            }
            mined.Add(rows[r].Example with { Texts = [.. rows[r].Example.Texts, .. chosen.Select(id => texts[id])] });
        }
        string sources = string.Join(" + ", new[] { NegativeSources.Bm25, NegativeSources.Dense }.Where(s => options.Sources.HasFlag(s)).Select(s => s.ToString().ToLowerInvariant()));
        string summary = $"{options.Count} {sources} negative{(options.Count == 1 ? "" : "s")} per row from ranks [{options.RangeMin}, {options.RangeMax})"
                         + (options.AbsoluteMargin is { } a ? $", margin {a}" : "") + (options.RelativeMargin is { } rm ? $", relative margin {rm}" : "")
                         + $", {(options.Random ? "sampled" : "top")}: {mined.Count} rows kept, {dropped} dropped";
        string[] columns = Enumerable.Range(1, options.Count).Select(k => options.Count == 1 ? "negative" : $"negative_{k}").ToArray();
        return new MinedNegatives(data.WithColumns(data.Source + " + mined negatives", columns, mined), dropped, summary);
    }

    /// <summary>Round robin over the sources' lists, skipping a document another source already gave.</summary>
    private static List<string> Interleave(List<List<string>> lists)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<string>();
        for (int rank = 0; rank < lists.Max(l => l.Count); rank++)
            foreach (List<string> list in lists)
                if (rank < list.Count && seen.Add(list[rank])) result.Add(list[rank]);
        return result;
    }

    /// <summary>The candidates that qualify: a rank within the range once relevant documents are removed, a score
    /// within the margins of the positive's.</summary>
    private static List<(string Id, double Score)> Qualifying(IEnumerable<(string Id, double Score)> ranked, Row row, double positiveScore,
        Dictionary<string, string> texts, HardNegativeOptions options)
    {
        string positiveText = texts.TryGetValue(row.PositiveId, out string? t) ? t : row.Example.Texts[1];
        double limit = Math.Min(options.AbsoluteMargin is { } a ? positiveScore - a : double.PositiveInfinity,
            options.RelativeMargin is { } r ? positiveScore - Math.Abs(positiveScore) * r : double.PositiveInfinity);
        return ranked
            .Where(c => !row.Relevant.Contains(c.Id) && c.Id != row.PositiveId && texts[c.Id] != positiveText)
            .Skip(options.RangeMin).Take(options.RangeMax - options.RangeMin)
            .Where(c => c.Score <= limit)
            .ToList();
    }

    private static List<(string, double)>[] Bm25Candidates(List<(string Id, string Text)> corpus, List<Row> rows, HardNegativeOptions options, CancellationToken ct)
    {
        var index = new Bm25Index();
        foreach (var (id, text) in corpus) index.Add(id, text);
        var texts = corpus.ToDictionary(c => c.Id, c => c.Text, StringComparer.Ordinal);
        // One search per distinct anchor (a query has as many rows as positives), deep enough for its largest relevant set.
        var depth = rows.GroupBy(r => r.Anchor, StringComparer.Ordinal).ToDictionary(g => g.Key, g => options.RangeMax + g.Max(r => r.Relevant.Count) + 1, StringComparer.Ordinal);
        var anchors = depth.Keys.ToList();
        var hits = new IReadOnlyList<Bm25Hit>[anchors.Count];
        Parallel.For(0, anchors.Count, new ParallelOptions { CancellationToken = ct }, a => hits[a] = index.Search(anchors[a], depth[anchors[a]]));
        var byAnchor = anchors.Select((a, i) => (a, i)).ToDictionary(x => x.a, x => hits[x.i], StringComparer.Ordinal);
        var result = new List<(string, double)>[rows.Count];
        Parallel.For(0, rows.Count, new ParallelOptions { CancellationToken = ct }, r =>
        {
            Row row = rows[r];
            IReadOnlyList<Bm25Hit> own = index.Search(row.Anchor, 1, id => id == row.PositiveId);
            double positive = own.Count > 0 ? own[0].Score : 0;
            result[r] = Qualifying(byAnchor[row.Anchor].Select(h => (h.DocId, (double)h.Score)), row, positive, texts, options);
        });
        return result;
    }

    private static List<(string, double)>[] DenseCandidates(List<(string Id, string Text)> corpus, List<Row> rows, HardNegativeOptions options,
        SentenceEncoder encoder, CancellationToken ct)
    {
        float[][] docs = encoder.Encode(corpus.Select(c => c.Text).ToList(), ct);
        var anchors = rows.Select(r => r.Anchor).Distinct(StringComparer.Ordinal).ToList();
        float[][] queries = encoder.Encode(anchors, ct);
        var queryVector = anchors.Select((a, i) => (a, i)).ToDictionary(x => x.a, x => queries[x.i], StringComparer.Ordinal);
        var position = corpus.Select((c, i) => (c.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);
        using var index = new FlatIndex(encoder.Dimension, DistanceMetric.Cosine);
        index.AddBatch(docs.Select((v, i) => new VectorRecord(i, v)).ToList(), ct: ct);
        var texts = corpus.ToDictionary(c => c.Id, c => c.Text, StringComparer.Ordinal);
        int depth = options.RangeMax + rows.Max(r => r.Relevant.Count) + 1;
        IReadOnlyList<VectorHit>[] found = index.SearchBatch(queries, depth, ct: ct);
        var hitsOf = anchors.Select((a, i) => (a, i)).ToDictionary(x => x.a, x => found[x.i], StringComparer.Ordinal);
        var result = new List<(string, double)>[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            ct.ThrowIfCancellationRequested();
            Row row = rows[r];
            float[] q = queryVector[row.Anchor];
            IReadOnlyList<VectorHit> hits = hitsOf[row.Anchor];
            double positive = position.TryGetValue(row.PositiveId, out int p) ? System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(q, docs[p]) : 0;
            result[r] = Qualifying(hits.Select(h => (corpus[(int)h.Id].Id, (double)h.Score)), row, positive, texts, options);
        }
        return result;
    }
}
