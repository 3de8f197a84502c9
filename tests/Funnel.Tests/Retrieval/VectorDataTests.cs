using Funnel.Index;
using Funnel.Retrieval;
using Funnel.Retrieval.VectorData;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace Funnel.Tests.Retrieval;

/// <summary>
/// The Microsoft.Extensions.VectorData adapter against Funnel itself: records round-trip through a collection folder, and
/// dense, filtered and hybrid searches give exactly what <see cref="SearchPipeline"/> gives on the same data (60 NFCorpus
/// documents, a small random-weight bi-encoder of 32 dimensions).
/// </summary>
public sealed class VectorDataTests : IClassFixture<SmallModels>, IDisposable
{
    private static readonly ChunkingOptions Chunking = new() { MaxTokens = 48, OverlapTokens = 8 };
    private static readonly string[] Queries = ["vitamin D deficiency and bone health", "statin use and breast cancer", "fish oil", "obesity in children"];
    private readonly SmallModels _models;
    private readonly string _root = Directory.CreateTempSubdirectory("funnel-vectordata-").FullName;

    public VectorDataTests(SmallModels models) => _models = models;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>A record as Semantic Kernel samples write them: the text is full-text indexed and is what the vector is made from.</summary>
    public sealed class Passage
    {
        [VectorStoreKey] public string Id { get; set; } = "";
        [VectorStoreData(IsFullTextIndexed = true)] public string Text { get; set; } = "";
        [VectorStoreData(StorageName = "half")] public string? Half { get; set; }
        [VectorStoreData] public int Year { get; set; }
        [VectorStoreData] public string[]? Tags { get; set; }
        [VectorStoreData] public double? Rating { get; set; }
        [VectorStoreData] public bool Reviewed { get; set; }
        [VectorStoreVector(32)] public string Embedding => Text;
    }

    /// <summary>A record whose caller computes the vector, searched by the exact (flat) index.</summary>
    public sealed class Precomputed
    {
        [VectorStoreKey] public Guid Id { get; set; }
        [VectorStoreData] public string? Label { get; set; }
        [VectorStoreVector(32, IndexKind = IndexKind.Flat)] public ReadOnlyMemory<float>? Vector { get; set; }
    }

    /// <summary>Funnel's own ingest of the documents (first 30 with metadata half=first) into a collection of this index kind.</summary>
    private Collection Indexed(string name, VectorIndexKind kind = VectorIndexKind.Hnsw)
    {
        var collection = Collection.Create(Path.Combine(_root, name), _models.BiEncoder,
            new CollectionOptions { Chunking = Chunking, VectorIndex = new VectorIndexSettings { Kind = kind } });
        var half = new Dictionary<string, string> { ["half"] = "first" };
        var documents = _models.Documents.Select((d, i) => new Document(d.Id, "", d.FullText, i < 30 ? half : Document.NoMetadata));
        CollectionIndexer.IndexAsync(collection, _models.BiEncoder, documents.ToAsyncEnumerable(), new IndexingOptions { BatchSize = 16 }).GetAwaiter().GetResult();
        return collection;
    }

    private FunnelVectorStore Store(string folder) =>
        new(folder, _models.BiEncoder, new FunnelVectorStoreOptions { NewCollections = new CollectionOptions { Chunking = Chunking } });

    private static (string Id, double? Score)[] Hits<T>(IEnumerable<VectorSearchResult<T>> results, Func<T, string> id) where T : class =>
        [.. results.Select(r => (id(r.Record), r.Score))];

    [Fact]
    public async Task RecordsRoundTripThroughACollectionFolderAndSurviveReopening()
    {
        string folder = Path.Combine(_root, "store");
        Passage[] records =
        [
            new() { Id = "a", Text = "Vitamin D and bone density in older adults.", Half = "first", Year = 2019, Tags = ["bone", "vitamin"], Rating = 4.5, Reviewed = true },
            new() { Id = "b/c", Text = "Green tea catechins and cardiovascular risk.", Year = 2021, Tags = [] },
            new() { Id = "d", Text = string.Join(' ', _models.Documents[0].FullText.Split(' ').Take(200)), Half = "second", Year = 1999 },
        ];
        using (FunnelVectorStore store = Store(folder))
        {
            VectorStoreCollection<string, Passage> passages = store.GetCollection<string, Passage>("passages");
            Assert.False(await passages.CollectionExistsAsync());
            await Assert.ThrowsAsync<VectorStoreException>(() => passages.UpsertAsync(records[0]));
            await passages.EnsureCollectionExistsAsync();
            await passages.UpsertAsync(records);
            Collection collection = (Collection)passages.GetService(typeof(Collection))!;
            Assert.Equal(3, collection.DocumentCount);
            Assert.True(collection.ChunkCount > 3, "the long record is cut into several chunks of 48 wordpieces");
            Assert.Equal(["passages"], await store.ListCollectionNamesAsync().ToListAsync());
        }

        using (FunnelVectorStore reopened = Store(folder))
        {
            VectorStoreCollection<string, Passage> passages = reopened.GetCollection<string, Passage>("passages");
            foreach (Passage expected in records)
            {
                Passage actual = (await passages.GetAsync(expected.Id))!;
                Assert.Equal((expected.Id, expected.Text, expected.Half, expected.Year, expected.Rating, expected.Reviewed, expected.Embedding),
                    (actual.Id, actual.Text, actual.Half, actual.Year, actual.Rating, actual.Reviewed, actual.Embedding));
                Assert.Equal(expected.Tags, actual.Tags);
            }
            Assert.Equal(["a", "d"], await passages.GetAsync(["a", "missing", "d"]).Select(p => p.Id).ToListAsync());
            // Metadata is stored as Funnel stores it: strings as they are, other values as JSON.
            Document stored = ((Collection)passages.GetService(typeof(Collection))!).Get("a")!;
            Assert.Equal("first", stored.Metadata["half"]);
            Assert.Equal("[\"bone\",\"vitamin\"]", stored.Metadata["Tags"]);
            Assert.Equal("true", stored.Metadata["Reviewed"]);

            Assert.Equal(["d"], await passages.GetAsync(p => p.Half == "second", 10).Select(p => p.Id).ToListAsync());
            Assert.Equal(["d", "a", "b/c"], await passages.GetAsync(p => true, 10,
                new FilteredRecordRetrievalOptions<Passage> { OrderBy = o => o.Ascending(p => p.Year) }).Select(p => p.Id).ToListAsync());

            await passages.DeleteAsync(["b/c", "missing"]);
            Assert.Null(await passages.GetAsync("b/c"));
            await reopened.EnsureCollectionDeletedAsync("passages");
            Assert.False(await reopened.CollectionExistsAsync("passages"));
            Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
        }
    }

    [Fact]
    public async Task DenseSearchGivesThePipelinesResultsWithFilterTopAndSkip()
    {
        using Collection collection = Indexed("dense");
        using var passages = new FunnelVectorStoreCollection<string, Passage>(collection, _models.BiEncoder);
        var pipeline = new SearchPipeline(collection, _models.BiEncoder);
        var half = new MetadataFilter([KeyValuePair.Create("half", "first")]);
        foreach (string query in Queries)
        {
            SearchResponse expected = await pipeline.SearchAsync(query, new SearchOptions { Retriever = Retriever.Dense, Candidates = 10, Results = 10, Rerank = false });
            Assert.Equal(10, expected.Results.Count);
            Assert.Equal(expected.Results.Select(r => (r.DocumentId, (double?)r.DenseScore!.Value)), Hits(await passages.SearchAsync(query, 10).ToListAsync(), p => p.Id));

            SearchResponse filtered = await pipeline.SearchAsync(query, new SearchOptions { Retriever = Retriever.Dense, Candidates = 8, Results = 8, Rerank = false, Filter = half });
            var page = await passages.SearchAsync(query, 5, new VectorSearchOptions<Passage> { Filter = p => p.Half == "first", Skip = 3 }).ToListAsync();
            Assert.Equal(filtered.Results.Skip(3).Select(r => (r.DocumentId, (double?)r.DenseScore!.Value)), Hits(page, p => p.Id));
            Assert.All(page, r => Assert.Equal("first", r.Record.Half));

            // A query vector the caller embedded finds the same.
            Embedding<float> vector = (await _models.BiEncoder.GenerateAsync([query], Funnel.Inference.SentenceEmbeddingOptions.ForQueries()))[0];
            Assert.Equal(Hits(await passages.SearchAsync(query, 10).ToListAsync(), p => p.Id), Hits(await passages.SearchAsync(vector.Vector, 10).ToListAsync(), p => p.Id));
        }
    }

    [Fact]
    public async Task HybridSearchIsFunnelsHybridSearch()
    {
        using Collection collection = Indexed("hybrid");
        using var passages = new FunnelVectorStoreCollection<string, Passage>(collection, _models.BiEncoder);
        var hybrid = (IKeywordHybridSearchable<Passage>)passages;
        var pipeline = new SearchPipeline(collection, _models.BiEncoder);
        foreach (string query in Queries)
        {
            SearchResponse expected = await pipeline.SearchAsync(query, new SearchOptions { Retriever = Retriever.Hybrid, Results = 10, Rerank = false });
            var actual = await hybrid.HybridSearchAsync(query, query.Split(' '), 10).ToListAsync();
            Assert.Equal(expected.Results.Select(r => (r.DocumentId, r.FusedScore)), Hits(actual, p => p.Id));
            Assert.Contains(expected.Results, r => r.Bm25Rank is not null && r.DenseRank is not null); // both sides contributed
        }
    }

    [Fact]
    public async Task IngestThroughTheAdapterStoresWhatFunnelsOwnIngestStores()
    {
        using Collection funnel = Indexed("funnel", VectorIndexKind.Flat);
        using FunnelVectorStore store = Store(Path.Combine(_root, "store"));
        var passages = store.GetCollection<string, Passage>("adapter", new VectorStoreCollectionDefinition
        {
            Properties =
            [
                new VectorStoreKeyProperty(nameof(Passage.Id), typeof(string)),
                new VectorStoreDataProperty(nameof(Passage.Text), typeof(string)) { IsFullTextIndexed = true },
                new VectorStoreDataProperty(nameof(Passage.Half), typeof(string)) { StorageName = "half" },
                new VectorStoreVectorProperty(nameof(Passage.Embedding), typeof(string), 32) { IndexKind = IndexKind.Flat },
            ],
        });
        await passages.EnsureCollectionExistsAsync();
        await passages.UpsertAsync(_models.Documents.Select((d, i) => new Passage { Id = d.Id, Text = d.FullText, Half = i < 30 ? "first" : null }));
        Collection adapter = (Collection)passages.GetService(typeof(Collection))!;
        Assert.Equal((funnel.DocumentCount, funnel.ChunkCount), (adapter.DocumentCount, adapter.ChunkCount));
        Assert.Equal(VectorIndexKind.Flat, adapter.Manifest.VectorIndex.Kind);

        var pipeline = new SearchPipeline(funnel, _models.BiEncoder);
        foreach (string query in Queries)
        {
            SearchResponse expected = await pipeline.SearchAsync(query, new SearchOptions { Retriever = Retriever.Dense, Candidates = 10, Results = 10, Rerank = false });
            var actual = Hits(await passages.SearchAsync(query, 10).ToListAsync(), p => p.Id);
            Assert.Equal(expected.Results.Select(r => r.DocumentId), actual.Select(a => a.Id));
            for (int i = 0; i < actual.Length; i++) Assert.Equal(expected.Results[i].DenseScore!.Value, actual[i].Score!.Value, 5);
        }
    }

    [Fact]
    public async Task AGivenVectorIsStoredAsTheRecordsOneChunkAndGuidKeysRoundTrip()
    {
        using FunnelVectorStore store = Store(Path.Combine(_root, "vectors"));
        var vectors = store.GetCollection<Guid, Precomputed>("vectors");
        await vectors.EnsureCollectionExistsAsync();
        var ids = Enumerable.Range(0, 5).Select(i => new Guid(i + 1, 0, 0, new byte[8])).ToArray();
        float[] Axis(int i) => [.. Enumerable.Range(0, 32).Select(d => d == i ? 1f : d == 31 ? 0.1f : 0f)];
        await vectors.UpsertAsync(ids.Select((id, i) => new Precomputed { Id = id, Label = $"axis {i}", Vector = Axis(i) }));
        Assert.Equal("axis 3", (await vectors.GetAsync(ids[3]))!.Label);

        var hits = await vectors.SearchAsync(Axis(2), 2).ToListAsync();
        Assert.Equal(ids[2], hits[0].Record.Id);
        Assert.Equal(1.0, hits[0].Score!.Value, 5); // cosine of a vector with itself
        Assert.Equal(0.01 / 1.01, hits[1].Score!.Value, 5); // two axes that share only the 0.1 component

        var wrong = new Precomputed { Id = Guid.NewGuid(), Vector = new float[31] };
        var error = await Assert.ThrowsAsync<ArgumentException>(() => vectors.UpsertAsync(wrong));
        Assert.Contains("'Vector' has 31 dimensions", error.Message);
        await Assert.ThrowsAsync<NotSupportedException>(() => vectors.GetAsync(ids[0], new RecordRetrievalOptions { IncludeVectors = true }));
    }

    [Fact]
    public async Task AFilterFunnelCannotTranslateIsAClearErrorNamingTheNode()
    {
        using Collection collection = Indexed("filters");
        using var passages = new FunnelVectorStoreCollection<string, Passage>(collection, _models.BiEncoder);

        var comparison = await Assert.ThrowsAsync<NotSupportedException>(() =>
            passages.SearchAsync("fish oil", 5, new VectorSearchOptions<Passage> { Filter = p => p.Year > 2000 }).ToListAsync().AsTask());
        Assert.Contains("(p.Year > 2000)", comparison.Message);
        Assert.Contains("GreaterThan", comparison.Message);

        var or = await Assert.ThrowsAsync<NotSupportedException>(() =>
            passages.SearchAsync("fish oil", 5, new VectorSearchOptions<Passage> { Filter = p => p.Half == "first" || p.Year == 2020 }).ToListAsync().AsTask());
        Assert.Contains("OrElse", or.Message);

        var text = await Assert.ThrowsAsync<NotSupportedException>(() =>
            passages.SearchAsync("fish oil", 5, new VectorSearchOptions<Passage> { Filter = p => p.Text == "x" }).ToListAsync().AsTask());
        Assert.Contains("'Text' is the full-text property", text.Message);

        // What Funnel can translate: equalities joined by &&, captured values, bare booleans.
        string wanted = "first";
        var found = await passages.SearchAsync("fish oil", 30, new VectorSearchOptions<Passage> { Filter = p => p.Half == wanted && !p.Reviewed }).ToListAsync();
        Assert.Empty(found); // no document has Reviewed=false stored: Funnel does not invent defaults
        Assert.Equal(30, (await passages.SearchAsync("fish oil", 40, new VectorSearchOptions<Passage> { Filter = p => p.Half == wanted }).ToListAsync()).Count);
    }

    [Fact]
    public async Task ADynamicCollectionStoresDictionariesByTheirDefinition()
    {
        using FunnelVectorStore store = Store(Path.Combine(_root, "dynamic"));
        var definition = new VectorStoreCollectionDefinition
        {
            Properties =
            [
                new VectorStoreKeyProperty("Key", typeof(string)),
                new VectorStoreDataProperty("Body", typeof(string)) { IsFullTextIndexed = true },
                new VectorStoreDataProperty("Pages", typeof(int)),
                new VectorStoreVectorProperty("Vector", typeof(string), 32),
            ],
        };
        var notes = store.GetDynamicCollection("notes", definition);
        await notes.EnsureCollectionExistsAsync();
        await notes.UpsertAsync([
            new Dictionary<string, object?> { ["Key"] = "fish", ["Body"] = "Fish oil and omega-3 fatty acids.", ["Pages"] = 12, ["Vector"] = "Fish oil and omega-3 fatty acids." },
            new Dictionary<string, object?> { ["Key"] = "tea", ["Body"] = "Green tea and catechins.", ["Pages"] = 3, ["Vector"] = "Green tea and catechins." },
        ]);
        Dictionary<string, object?> fish = (await notes.GetAsync("fish"))!;
        Assert.Equal(("Fish oil and omega-3 fatty acids.", 12), ((string)fish["Body"]!, (int)fish["Pages"]!));
        var hits = await notes.SearchAsync("Green tea and catechins.", 2, new VectorSearchOptions<Dictionary<string, object?>> { Filter = r => (int)r["Pages"]! == 3 }).ToListAsync();
        Assert.Equal("tea", Assert.Single(hits).Record["Key"]);
        Assert.Equal(1.0, hits[0].Score!.Value, 4); // the same text embeds to the same vector
    }
}
