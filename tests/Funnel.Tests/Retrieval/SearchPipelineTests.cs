using Funnel.Inference;
using Funnel.Retrieval;
using Microsoft.Extensions.AI;

namespace Funnel.Tests.Retrieval;

/// <summary>The pipeline end to end over a collection of real NFCorpus documents embedded by a small random-weight model.</summary>
public sealed class SearchPipelineTests : IClassFixture<SmallModels>, IDisposable
{
    private static readonly ChunkingOptions Chunking = new() { MaxTokens = 48, OverlapTokens = 8 };
    private readonly SmallModels _models;
    private readonly string _dir = Path.Combine(Directory.CreateTempSubdirectory("funnel-pipeline-").FullName, "c");
    private readonly Collection _collection;

    public SearchPipelineTests(SmallModels models)
    {
        _models = models;
        _collection = Collection.Create(_dir, models.BiEncoder, new CollectionOptions { Chunking = Chunking });
        var metadata = new Dictionary<string, string> { ["half"] = "first" };
        var docs = models.Documents.Select((d, i) => i < 30 ? d with { Metadata = metadata } : d).ToAsyncEnumerable();
        CollectionIndexer.IndexAsync(_collection, models.BiEncoder, docs, new IndexingOptions { BatchSize = 16 }).GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        _collection.Dispose();
        Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);
    }

    private SearchPipeline Pipeline(bool rerank = true) => new(_collection, _models.BiEncoder, rerank ? _models.CrossEncoder : null);

    [Fact]
    public void EveryChunkIsFoundByItsOwnTextAtRankOne()
    {
        Assert.Equal(60, _collection.DocumentCount);
        Assert.True(_collection.ChunkCount > 100, $"only {_collection.ChunkCount} chunks: the documents should need several each");
        var pipeline = Pipeline(rerank: false);
        var embedder = new DocumentEmbedder(_models.BiEncoder, Chunking);
        foreach (Document d in _models.Documents.Take(10))
        {
            IReadOnlyList<ChunkSpan> chunks = embedder.Chunk(d.FullText);
            int last = chunks.Count - 1;
            string passage = d.FullText[chunks[last].Start..chunks[last].End];
            IReadOnlyList<SearchResult> results = pipeline.Search(passage, new SearchOptions { Retriever = Retriever.Dense, Results = 3 }).Results;
            SearchResult top = results[0];
            // Identical text embeds identically (cosine 1); NFCorpus has documents sharing a closing chunk, which then tie.
            Assert.Equal(1f, top.DenseScore!.Value, 4);
            Assert.Equal(passage, top.Passage);
            Assert.Equal(1, top.DenseRank);
            Assert.Contains(results, r => r.DocumentId == d.Id && r.DenseScore > 0.9999f && r.Passage == passage);
            Assert.Null(top.Bm25Score);
        }
    }

    /// <summary>Middleware around an embedding generator, as M.E.AI's caching or logging generators are: counts the calls.</summary>
    private sealed class CountingGenerator(IEmbeddingGenerator<string, Embedding<float>> inner) : DelegatingEmbeddingGenerator<string, Embedding<float>>(inner)
    {
        public int Calls;
        public List<string?> Roles { get; } = [];

        public override Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
            CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Calls);
            lock (Roles) Roles.Add(options?.AdditionalProperties?[SentenceEmbeddingOptions.RoleKey] as string);
            return base.GenerateAsync(values, options, cancellationToken);
        }
    }

    [Fact]
    public async Task AGeneratorBehindMiddlewareGivesTheEncodersResultsAndABatchEmbedsOnce()
    {
        const string query = "vitamin D deficiency and bone health";
        var options = new SearchOptions { Retriever = Retriever.Hybrid, Candidates = 20, Results = 10 };
        var counting = new CountingGenerator(_models.BiEncoder);
        // The fingerprint check sees through the middleware (GetService is forwarded).
        var wrapped = new SearchPipeline(_collection, counting, _models.CrossEncoder);
        Assert.Throws<BiEncoderMismatchException>(() => new SearchPipeline(_collection, new CountingGenerator(_models.OtherBiEncoder)));

        SearchResponse direct = Pipeline().Search(query, options);
        SearchResponse through = await wrapped.SearchAsync(query, options);
        Assert.Equal(direct.Results.Select(r => (r.DocumentId, r.DenseScore, r.Bm25Score, r.RerankScore, r.RerankLogit)),
            through.Results.Select(r => (r.DocumentId, r.DenseScore, r.Bm25Score, r.RerankScore, r.RerankLogit)));
        Assert.Equal(["query"], counting.Roles);

        // Many queries: one embedding call for the batch, as queries.
        (string, string)[] queries = [("a", "fish oil"), ("b", "obesity in children"), ("c", "green tea")];
        var many = await wrapped.SearchManyAsync(queries, options).ToListAsync();
        Assert.Equal(2, counting.Calls);
        for (int i = 0; i < queries.Length; i++)
            Assert.Equal(Pipeline().Search(queries[i].Item2, options).Results.Select(r => r.DocumentId), many[i].Response.Results.Select(r => r.DocumentId));
    }

    /// <summary>A reranker that returns fixed scores (logit = score − 100, so the two can be told apart).</summary>
    private sealed class FixedReranker(Func<int, float> score) : IReranker
    {
        public Task<RerankScores> ScoreAsync(string query, IReadOnlyList<string> documents, RerankOptions? options = null, CancellationToken cancellationToken = default)
        {
            float[] scores = [.. Enumerable.Range(0, documents.Count).Select(score)];
            return Task.FromResult(new RerankScores(scores, [.. scores.Select(s => s - 100)], 0));
        }
    }

    [Fact]
    public void RerankTiesKeepFirstStageOrderAndNaNGoesLast()
    {
        const string query = "statin use and breast cancer";
        var options = new SearchOptions { Retriever = Retriever.Bm25, Candidates = 12, Results = 12 };
        string[] first = [.. Pipeline(rerank: false).Search(query, options).Results.Select(r => r.DocumentId)];
        Assert.Equal(12, first.Length);

        // All tied: first-stage order, every time.
        var tied = new SearchPipeline(_collection, null, new FixedReranker(_ => 0.5f));
        for (int run = 0; run < 3; run++) Assert.Equal(first, tied.Search(query, options).Results.Select(r => r.DocumentId));

        // Scores 0, 1, 0, 1, … with candidate 3 NaN: the ones first in first-stage order, then the zeros, NaN last.
        var mixed = new SearchPipeline(_collection, null, new FixedReranker(i => i == 3 ? float.NaN : i % 2));
        SearchResult[] results = [.. mixed.Search(query, options).Results];
        int[] expected = [1, 5, 7, 9, 11, 0, 2, 4, 6, 8, 10, 3];
        Assert.Equal(expected.Select(i => first[i]), results.Select(r => r.DocumentId));
        Assert.Equal(Enumerable.Range(1, 12), results.Select(r => r.Rank));
        Assert.All(results.Where(r => !float.IsNaN(r.RerankScore!.Value)), r => Assert.Equal(r.RerankScore!.Value - 100, r.RerankLogit!.Value));
        Assert.All(results, r => Assert.Equal(r.RerankScore!.Value, r.Score));
    }

    [Fact]
    public void ARerankWeightBelowOneBlendsBothStagesByReciprocalRank()
    {
        const string query = "statin use and breast cancer";
        var options = new SearchOptions { Retriever = Retriever.Bm25, Candidates = 4, Results = 4, RrfK = 0 };
        string[] first = [.. Pipeline(rerank: false).Search(query, options).Results.Select(r => r.DocumentId)];
        // The reranker reverses the first stage: candidate i gets score i, so rerank rank 4 − i against first-stage rank i + 1.
        var reversing = new SearchPipeline(_collection, null, new FixedReranker(i => i));
        Assert.Equal(first.Reverse(), reversing.Search(query, options).Results.Select(r => r.DocumentId));
        Assert.All(reversing.Search(query, options).Results, r => Assert.Null(r.BlendScore));

        // w = 0.75, k = 0: 0.75 / (4 − i) + 0.25 / (i + 1) = 0.4375, 0.375, 0.4583, 0.8125 for i = 0…3. The first stage's
        // top candidate climbs over the one the reranker put third.
        SearchResult[] blended = [.. reversing.Search(query, options with { RerankWeight = 0.75 }).Results];
        Assert.Equal([first[3], first[2], first[0], first[1]], blended.Select(r => r.DocumentId));
        Assert.Equal([0.8125, 0.75 / 2 + 0.25 / 3, 0.4375, 0.375], blended.Select(r => r.BlendScore!.Value));
        Assert.All(blended, r => Assert.Equal(r.BlendScore!.Value, r.Score));
        Assert.Equal([3f, 2f, 0f, 1f], blended.Select(r => r.RerankScore!.Value)); // the rerank scores are still reported
        Assert.Equal([1, 2, 3, 4], blended.Select(r => r.Rank));

        // w = 0: the first stage's order, with the reranker's scores beside it.
        SearchResult[] firstOnly = [.. reversing.Search(query, options with { RerankWeight = 0 }).Results];
        Assert.Equal(first, firstOnly.Select(r => r.DocumentId));
        Assert.Equal([0f, 1f, 2f, 3f], firstOnly.Select(r => r.RerankScore!.Value));

        foreach (double bad in new[] { -0.1, 1.5, double.NaN })
            Assert.Equal("RerankWeight", Assert.Throws<ArgumentOutOfRangeException>(() => reversing.Search(query, options with { RerankWeight = bad })).ParamName);
    }

    [Fact]
    public void RerankScoreIsTheActivationAndTheLogitIsReportedBesideIt()
    {
        const string query = "statin use and breast cancer";
        var options = new SearchOptions { Retriever = Retriever.Hybrid, Candidates = 10, Results = 10 };
        using CrossEncoder sigmoid = CrossEncoder.Load(_models.CrossEncoderPath, new EncoderOptions { Activation = ScoreActivation.Sigmoid });
        SearchResult[] logits = [.. Pipeline().Search(query, options).Results]; // this cross-encoder's config names Identity
        SearchResult[] probabilities = [.. new SearchPipeline(_collection, _models.BiEncoder, sigmoid).Search(query, options).Results];
        Assert.Equal(logits.Select(r => r.DocumentId), probabilities.Select(r => r.DocumentId)); // the sigmoid keeps the order
        for (int i = 0; i < logits.Length; i++)
        {
            Assert.Equal(logits[i].RerankScore, logits[i].RerankLogit);
            Assert.Equal(logits[i].RerankLogit, probabilities[i].RerankLogit);
            Assert.Equal(1f / (1f + MathF.Exp(-logits[i].RerankLogit!.Value)), probabilities[i].RerankScore!.Value, 6);
        }
    }

    [Fact]
    public void ParallelIndexingLeavesNoChunkUnreachable()
    {
        // NFCorpus chunks through a random-weight model, indexed 16 at a time on all cores as the indexer does. A race
        // in linking (a node's own list written after others had linked to it) used to strand a few chunks in about
        // a third of such builds; a stranded chunk is never found, not even by its own vector.
        var embedder = new DocumentEmbedder(_models.BiEncoder, Chunking);
        float[][] vectors = [.. embedder.Embed(_models.Documents).SelectMany(d => d.Vectors)];
        for (int round = 0; round < 10; round++)
        {
            using var index = new Funnel.Index.HnswIndex(vectors[0].Length);
            for (int b = 0; b < vectors.Length; b += 16)
                index.AddBatch([.. Enumerable.Range(b, Math.Min(16, vectors.Length - b)).Select(i => new Funnel.Index.VectorRecord(i, vectors[i]))]);
            Assert.Equal(0, index.UnreachableCount());
            var found = index.SearchBatch(vectors, 1);
            for (int i = 0; i < vectors.Length; i++)
                Assert.True(found[i][0].Score > 0.9999f, $"round {round}: chunk {i} found only a neighbour at {found[i][0].Score}");
        }
    }

    [Fact]
    public void Bm25FindsTheDocumentWithARareTitleTerm()
    {
        Document d = _models.Documents[5];
        SearchResponse r = Pipeline(rerank: false).Search(d.Title, new SearchOptions { Retriever = Retriever.Bm25 });
        Assert.Equal(d.Id, r.Results[0].DocumentId);
        Assert.Equal(1, r.Results[0].Bm25Rank);
        Assert.Null(r.Results[0].DenseScore);
        Assert.Equal(d.FullText, r.Results[0].Passage);
        Assert.Equal(TimeSpan.Zero, r.Timings.Embed);
    }

    [Fact]
    public void HybridScoresAreReciprocalRankFusionOfBothRankings()
    {
        string query = "dietary fiber and cancer risk";
        SearchResponse r = Pipeline(rerank: false).Search(query, new SearchOptions { Retriever = Retriever.Hybrid, Candidates = 20, Results = 20, RrfK = 60 });
        Assert.NotEmpty(r.Results);
        foreach (SearchResult x in r.Results)
        {
            double expected = (x.DenseRank is int dr ? 1.0 / (60 + dr) : 0) + (x.Bm25Rank is int br ? 1.0 / (60 + br) : 0);
            Assert.Equal(expected, x.FusedScore!.Value, 12);
        }
        Assert.Equal(r.Results.Select(x => x.FusedScore).OrderDescending(), r.Results.Select(x => x.FusedScore));
        Assert.Contains(r.Results, x => x.DenseRank is not null && x.Bm25Rank is not null);
    }

    [Fact]
    public void ExcludedDocumentsLeaveEachRetrieverBeforeFusionAndNCandidatesRemain()
    {
        string query = "dietary fiber and cancer risk";
        var options = new SearchOptions { Candidates = 8, Results = 8, Rerank = false };
        var pipeline = Pipeline(rerank: false);
        IReadOnlyList<string> Ids(Retriever retriever, int candidates, IReadOnlySet<string>? exclude = null) =>
            pipeline.Search(query, options with { Retriever = retriever, Candidates = candidates, Results = candidates, Exclude = exclude }).Results.Select(r => r.DocumentId).ToList();

        foreach (Retriever single in new[] { Retriever.Dense, Retriever.Bm25 })
        {
            // Without the top two, the next N move up: the first N + 2 less those two.
            IReadOnlyList<string> wide = Ids(single, 10);
            var exclude = new HashSet<string> { wide[0], wide[3] };
            Assert.Equal(wide.Where(id => !exclude.Contains(id)), Ids(single, 8, exclude));
        }

        // Hybrid fuses the two rankings without the document, so the others keep ranks 1, 2, …: the same as fusing lists
        // that never held it.
        string dropped = Ids(Retriever.Dense, 1)[0];
        var without = new HashSet<string> { dropped };
        var expected = Funnel.Retrieval.ReciprocalRankFusion.Fuse<string>(
            [Ids(Retriever.Dense, 9).Where(id => id != dropped).Take(8).ToList(), Ids(Retriever.Bm25, 9).Where(id => id != dropped).Take(8).ToList()])
            .Take(8).Select(f => f.Key);
        Assert.Equal(expected, Ids(Retriever.Hybrid, 8, without));
        Assert.DoesNotContain(dropped, Ids(Retriever.Hybrid, 8, without));
    }

    [Fact]
    public void RerankingScoresEveryCandidateWithTheCrossEncoderAndKeepsTheBestM()
    {
        string query = "statin use and breast cancer";
        var options = new SearchOptions { Retriever = Retriever.Hybrid, Candidates = 15, Results = 5 };
        SearchResponse first = Pipeline(rerank: false).Search(query, options with { Results = 15 });
        SearchResponse reranked = Pipeline().Search(query, options);

        float[] direct = _models.CrossEncoder.Score(query, first.Results.Select(x => x.Passage).ToList());
        var expected = first.Results.Select((x, i) => (x.DocumentId, Score: direct[i])).OrderByDescending(x => x.Score).Take(5).ToList();
        Assert.Equal(expected.Select(x => x.DocumentId), reranked.Results.Select(x => x.DocumentId));
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(expected[i].Score, reranked.Results[i].RerankScore!.Value, 5);
            Assert.Equal(i + 1, reranked.Results[i].Rank);
            Assert.NotNull(reranked.Results[i].FusedScore);
        }
        Assert.True(reranked.Timings.Rerank > TimeSpan.Zero && reranked.Timings.Embed > TimeSpan.Zero);
    }

    [Fact]
    public async Task MetadataFiltersReachBothRetrievers()
    {
        var filter = MetadataFilter.Parse(["half=first"]);
        var firstHalf = _models.Documents.Take(30).Select(d => d.Id).ToHashSet();
        foreach (Retriever retriever in Enum.GetValues<Retriever>())
        {
            SearchResponse r = await Pipeline().SearchAsync("vitamin D", new SearchOptions { Retriever = retriever, Results = 50, Filter = filter });
            Assert.NotEmpty(r.Results);
            Assert.All(r.Results, x => Assert.Contains(x.DocumentId, firstHalf));
        }
    }

    [Fact]
    public async Task SearchManyAnswersEveryQueryInOrderLikeSingleSearches()
    {
        (string, string)[] queries = [("q1", "fish oil omega-3"), ("q2", "obesity in children"), ("q3", "green tea")];
        var options = new SearchOptions { Retriever = Retriever.Hybrid, Candidates = 10, Results = 5 };
        var many = new List<(string Id, SearchResponse Response)>();
        await foreach (var item in Pipeline().SearchManyAsync(queries, options)) many.Add(item);
        Assert.Equal(["q1", "q2", "q3"], many.Select(m => m.Id));
        for (int i = 0; i < 3; i++)
            Assert.Equal(Pipeline().Search(queries[i].Item2, options).Results.Select(x => x.DocumentId), many[i].Response.Results.Select(x => x.DocumentId));
    }

    [Fact]
    public void AnotherBiEncoderIsRefused()
    {
        var e = Assert.Throws<BiEncoderMismatchException>(() => new SearchPipeline(_collection, _models.OtherBiEncoder));
        Assert.Contains("funnel reindex", e.Message);
        // BM25 needs no bi-encoder at all.
        Assert.NotEmpty(new SearchPipeline(_collection, null).Search("cancer", new SearchOptions { Retriever = Retriever.Bm25 }).Results);
        Assert.Throws<InvalidOperationException>(() => new SearchPipeline(_collection, null).Search("cancer", new SearchOptions { Retriever = Retriever.Dense }));
    }

    [Fact]
    public async Task ReIndexingSkipsUnchangedDocumentsAndRewritesChangedOnes()
    {
        var metadata = new Dictionary<string, string> { ["half"] = "first" }; // as indexed in the constructor
        var changed = _models.Documents.Select((d, i) => i < 30 ? d with { Metadata = metadata } : d)
            .Select((d, i) => i == 7 ? d with { Text = d.Text + " Amended." } : d).ToAsyncEnumerable();
        IndexingProgress p = await CollectionIndexer.IndexAsync(_collection, _models.BiEncoder, changed);
        Assert.Equal((60L, 1L, 59L), (p.DocumentsRead, p.DocumentsWritten, p.DocumentsUnchanged));
        Assert.EndsWith("Amended.", _collection.Get(_models.Documents[7].Id)!.Text);
        Assert.Equal(60, _collection.DocumentCount);
    }

    [Fact]
    public void UpsertStoresABatchDurablyWithoutACheckpoint()
    {
        long generation = _collection.Manifest.Generation;
        var fresh = new Document("new-1", "Broccoli sprouts", "Sulforaphane from broccoli sprouts, a short note.", Document.NoMetadata);
        CollectionIndexer.Upsert(_collection, _models.BiEncoder, [fresh]);
        Assert.Equal(generation, _collection.Manifest.Generation);
        Assert.Equal("new-1", _collection.SearchBm25("sulforaphane sprouts", 1)[0].DocumentId);
        Assert.Equal("new-1", Pipeline(rerank: false).Search(fresh.FullText, new SearchOptions { Retriever = Retriever.Dense }).Results[0].DocumentId);
        Assert.Throws<BiEncoderMismatchException>(() => CollectionIndexer.Upsert(_collection, _models.OtherBiEncoder, [fresh]));
    }

    [Fact]
    public async Task CancellingAnIngestKeepsWholeBatchesOnly()
    {
        string dir = _dir + "-cancel";
        using var cts = new CancellationTokenSource();
        using (Collection c = Collection.Create(dir, _models.BiEncoder, new CollectionOptions { Chunking = Chunking }))
        {
            var progress = new Inline(p => { if (p.DocumentsWritten >= 20) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                CollectionIndexer.IndexAsync(c, _models.BiEncoder, _models.Documents.ToAsyncEnumerable(), new IndexingOptions { BatchSize = 10 }, progress, cts.Token));
        }
        using Collection reopened = Collection.Open(dir, readOnly: true);
        Assert.Equal(20, reopened.DocumentCount);
        Assert.Equal(_models.Documents.Take(20).Select(d => d.Id).Order(), reopened.DocumentIds().Order());
        Assert.Equal(0, reopened.Recovery.ReplayedBatches); // cancellation checkpointed
    }

    [Fact]
    public void ReindexSwitchesTheCollectionToTheNewBiEncoder()
    {
        IndexingProgress p = CollectionIndexer.Reindex(_collection, _models.OtherBiEncoder, Chunking);
        Assert.Equal(60, p.DocumentsWritten);
        Assert.Equal(_models.OtherBiEncoder.Fingerprint.WeightsSha256, _collection.BiEncoder.WeightsSha256);
        Assert.Throws<BiEncoderMismatchException>(() => new SearchPipeline(_collection, _models.BiEncoder));
        Document d = _models.Documents[3];
        string passage = d.FullText[..Math.Min(d.FullText.Length, 80)];
        passage = passage[..passage.LastIndexOf(' ')];
        _collection.Dispose();
        using Collection reopened = Collection.Open(_dir, readOnly: true);
        Assert.Equal(_models.OtherBiEncoder.Fingerprint.WeightsSha256, reopened.BiEncoder.WeightsSha256);
        Assert.Equal(60, reopened.DocumentCount);
        var pipeline = new SearchPipeline(reopened, _models.OtherBiEncoder);
        Assert.Contains(d.Id, pipeline.Search(d.FullText[..Math.Min(200, d.FullText.Length)], new SearchOptions { Retriever = Retriever.Dense, Results = 3 }).Results.Select(r => r.DocumentId));
    }

    private sealed class Inline(Action<IndexingProgress> report) : IProgress<IndexingProgress>
    {
        public void Report(IndexingProgress value) => report(value);
    }
}
