// The abstractions' provider services (record model, filter helpers) are what every VectorData provider builds on; they are
// marked experimental (MEVD9001) because their shape may still change between releases.
#pragma warning disable MEVD9001
using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Funnel.Index;
using Funnel.Inference;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace Funnel.Retrieval.VectorData;

/// <summary>
/// A Funnel <see cref="Collection"/> as a <see cref="VectorStoreCollection{TKey, TRecord}"/>, so Semantic Kernel and other
/// Microsoft.Extensions.VectorData code runs on it unchanged. Records map onto documents as <see cref="RecordMapping"/> says:
/// a string vector property is chunked and embedded by the collection's bi-encoder exactly as <c>funnel index</c> does, a
/// numeric one is stored as the record's one chunk. Upserts and deletes are one durable batch per call; searches run
/// through <see cref="SearchPipeline"/> (dense for <see cref="SearchAsync"/>, reciprocal rank fusion with BM25 for
/// <see cref="HybridSearchAsync"/>), without reranking: scores are the first stage's (cosine similarity, dot product,
/// Euclidean distance, or the fused RRF score).
/// <para>Filters translate to Funnel's metadata filter (equalities joined by <c>&amp;&amp;</c>); others throw
/// <see cref="NotSupportedException"/>. Stored vectors are per chunk and normalised, so <c>IncludeVectors</c> is not
/// supported.</para>
/// </summary>
public sealed class FunnelVectorStoreCollection<TKey, TRecord> : VectorStoreCollection<TKey, TRecord>, IKeywordHybridSearchable<TRecord>
    where TKey : notnull
    where TRecord : class
{
    private readonly CollectionHandle _handle;
    private readonly IEmbeddingGenerator<string, Embedding<float>> _biEncoder;
    private readonly SentenceEncoder _encoder;
    private readonly RecordMapping _mapping;
    private readonly int _hybridCandidates;

    /// <summary>An adapter over an open collection (the caller keeps owning it).</summary>
    /// <param name="biEncoder">The collection's bi-encoder, or middleware around it (queries are embedded through it); it must
    /// lead to a <see cref="SentenceEncoder"/> through <c>GetService</c>, which chunks and embeds records.</param>
    /// <param name="definition">The record schema; null: read from <typeparamref name="TRecord"/>'s attributes.</param>
    public FunnelVectorStoreCollection(Collection collection, IEmbeddingGenerator<string, Embedding<float>> biEncoder, VectorStoreCollectionDefinition? definition = null)
        : this(new CollectionHandle.Given(collection), biEncoder, definition, FunnelVectorStoreOptions.DefaultHybridCandidates, dynamic: false)
    {
    }

    internal FunnelVectorStoreCollection(CollectionHandle handle, IEmbeddingGenerator<string, Embedding<float>> biEncoder, VectorStoreCollectionDefinition? definition,
        int hybridCandidates, bool dynamic)
    {
        ArgumentNullException.ThrowIfNull(biEncoder);
        _handle = handle;
        _biEncoder = biEncoder;
        _encoder = biEncoder.GetService<SentenceEncoder>()
                   ?? throw new ArgumentException("the bi-encoder must be a Funnel SentenceEncoder, or middleware around one: a collection's vectors are its", nameof(biEncoder));
        _mapping = RecordMapping.For<TKey, TRecord>(definition, biEncoder, dynamic);
        if (_mapping.Vector.Dimensions != _encoder.Dimension)
            throw new ArgumentException(
                $"vector property '{_mapping.Vector.ModelName}' has {_mapping.Vector.Dimensions} dimensions; the bi-encoder {_encoder.ModelId} makes {_encoder.Dimension}", nameof(definition));
        _hybridCandidates = hybridCandidates;
    }

    public override string Name => _handle.Name;

    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) => Task.FromResult(_handle.Existing() is not null);

    /// <summary>Creates the collection for the bi-encoder, with the record definition's distance function and index kind.</summary>
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        _handle.GetOrCreate(_encoder, VectorIndex(_mapping.Vector.DistanceFunction, _mapping.Vector.IndexKind));
        return Task.CompletedTask;
    }

    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        _handle.Delete();
        return Task.CompletedTask;
    }

    public override Task<TRecord?> GetAsync(TKey key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        CheckNoVectors(options?.IncludeVectors == true);
        Document? document = Require().Get(RecordMapping.Id(key));
        return Task.FromResult(document is null ? null : _mapping.ToRecord<TRecord>(document));
    }

    public override async IAsyncEnumerable<TRecord> GetAsync(IEnumerable<TKey> keys, RecordRetrievalOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        CheckNoVectors(options?.IncludeVectors == true);
        Collection collection = Require();
        foreach (TKey key in keys)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (collection.Get(RecordMapping.Id(key)) is { } document) yield return _mapping.ToRecord<TRecord>(document);
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <summary>The records matching <paramref name="filter"/>, in <see cref="FilteredRecordRetrievalOptions{TRecord}.OrderBy"/>
    /// order (else by key, ordinal), after <see cref="FilteredRecordRetrievalOptions{TRecord}.Skip"/>.</summary>
    public override async IAsyncEnumerable<TRecord> GetAsync(Expression<Func<TRecord, bool>> filter, int top, FilteredRecordRetrievalOptions<TRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(top);
        options ??= new FilteredRecordRetrievalOptions<TRecord>();
        CheckNoVectors(options.IncludeVectors);
        MetadataFilter? metadata = FilterTranslation.Translate(filter, _mapping);
        Collection collection = Require();
        var matches = new List<(string Id, TRecord Record)>();
        foreach (string id in collection.DocumentIds())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (collection.Get(id) is { } document && (metadata is null || metadata.Matches(document.Metadata)))
                matches.Add((id, _mapping.ToRecord<TRecord>(document)));
        }
        IOrderedEnumerable<(string Id, TRecord Record)> ordered = matches.OrderBy(_ => 0);
        if (options.OrderBy?.Invoke(new FilteredRecordRetrievalOptions<TRecord>.OrderByDefinition()) is { } orderBy)
            foreach (var sort in orderBy.Values)
            {
                Func<TRecord, object?> key = sort.PropertySelector.Compile();
                ordered = sort.Ascending ? ordered.ThenBy(m => key(m.Record)) : ordered.ThenByDescending(m => key(m.Record));
            }
        foreach (var (_, record) in ordered.ThenBy(m => m.Id, StringComparer.Ordinal).Skip(options.Skip).Take(top))
            yield return record;
        await Task.CompletedTask.ConfigureAwait(false);
    }

    public override Task DeleteAsync(TKey key, CancellationToken cancellationToken = default) => DeleteAsync([key], cancellationToken);

    /// <summary>Deletes the records as one durable batch (absent keys are ignored).</summary>
    public override async Task DeleteAsync(IEnumerable<TKey> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        string[] ids = [.. keys.Select(k => RecordMapping.Id(k))];
        if (ids.Length > 0) await Require().DeleteAsync(ids, cancellationToken).ConfigureAwait(false);
    }

    public override Task UpsertAsync(TRecord record, CancellationToken cancellationToken = default) => UpsertAsync([record], cancellationToken);

    /// <summary>Chunks and embeds the records that carry text, and stores all of them as one durable batch (fsynced before
    /// this returns). A record that cannot be stored fails the whole batch, naming it, before anything is written.</summary>
    public override async Task UpsertAsync(IEnumerable<TRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var mapped = records.Select(r => _mapping.ToDocument(r ?? throw new ArgumentNullException(nameof(records), "a record is null"))).ToList();
        if (mapped.Count == 0) return;
        Collection collection = Require();
        var embedder = new DocumentEmbedder(_encoder, collection.Manifest.Chunking);
        List<Document> toEmbed = [.. mapped.Where(m => m.Vector is null).Select(m => m.Document)];
        IReadOnlyList<EmbeddedDocument> embedded = toEmbed.Count == 0 ? [] :
            await Task.Run(() => embedder.Embed(toEmbed, cancellationToken), cancellationToken).ConfigureAwait(false);
        var batch = new List<EmbeddedDocument>(mapped.Count);
        int next = 0;
        foreach (var (document, vector) in mapped)
            batch.Add(vector is null ? embedded[next++] : new EmbeddedDocument(document, [new ChunkSpan(0, document.FullText.Length)], [vector]));
        await collection.UpsertAsync(batch, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The <paramref name="top"/> records nearest to <paramref name="searchValue"/>: a string (embedded as a query by the
    /// bi-encoder) or a vector (<see cref="ReadOnlyMemory{T}"/> of float, float[] or <see cref="Embedding{T}"/>).</summary>
    public override async IAsyncEnumerable<VectorSearchResult<TRecord>> SearchAsync<TInput>(TInput searchValue, int top, VectorSearchOptions<TRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(searchValue);
        options ??= new VectorSearchOptions<TRecord>();
        CheckNoVectors(options.IncludeVectors);
        if (options.VectorProperty is not null) _ = _mapping.Model.GetVectorPropertyOrSingle(options); // throws on a property that is not the vector
        Collection collection = Require();
        var (dense, text) = Dense(collection, searchValue);
        int wanted = Wanted(top, options.Skip);
        var search = new SearchOptions
        {
            Retriever = Retriever.Dense, Candidates = wanted, Results = wanted, Rerank = false, Filter = FilterTranslation.Translate(options.Filter, _mapping),
        };
        SearchResponse response = await new SearchPipeline(dense).SearchAsync(text, search, cancellationToken).ConfigureAwait(false);
        foreach (var result in Results(collection, response, options.Skip, options.ScoreThreshold, r => Score(collection, r.DenseScore!.Value)))
            yield return result;
    }

    /// <summary>
    /// Reciprocal rank fusion of the nearest records to <paramref name="searchValue"/> and the BM25 ranking of
    /// <paramref name="keywords"/> over the records' text, as Funnel's hybrid search: each side fetches
    /// max(top + skip, <see cref="FunnelVectorStoreOptions.HybridCandidates"/>) and the fused list is cut to top. Scores are the fused ones.
    /// </summary>
    public async IAsyncEnumerable<VectorSearchResult<TRecord>> HybridSearchAsync<TInput>(TInput searchValue, ICollection<string> keywords, int top,
        HybridSearchOptions<TRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TInput : notnull
    {
        ArgumentNullException.ThrowIfNull(searchValue);
        ArgumentNullException.ThrowIfNull(keywords);
        options ??= new HybridSearchOptions<TRecord>();
        CheckNoVectors(options.IncludeVectors);
        if (options.VectorProperty is not null)
            _ = _mapping.Model.GetVectorPropertyOrSingle(new VectorSearchOptions<TRecord> { VectorProperty = options.VectorProperty });
        if (options.AdditionalProperty is not null && !ReferenceEquals(_mapping.Model.GetFullTextDataPropertyOrSingle(options.AdditionalProperty), _mapping.Text))
            throw new NotSupportedException($"keyword search runs over the record's one text ('{_mapping.Text?.ModelName}'); '{options.AdditionalProperty}' is another property");
        string query = string.Join(' ', keywords);
        if (Document.QueryProblem(query) is { } problem) throw new ArgumentException($"keywords: {problem}", nameof(keywords));
        Collection collection = Require();
        var (dense, text) = Dense(collection, searchValue);
        int wanted = Wanted(top, options.Skip);
        var search = new SearchOptions
        {
            Retriever = Retriever.Hybrid, Candidates = Math.Max(wanted, _hybridCandidates), Results = wanted, Rerank = false,
            Filter = FilterTranslation.Translate(options.Filter, _mapping),
        };
        // The dense side embeds searchValue (or takes it as a vector); the BM25 side gets the keywords as its query text.
        var hybrid = new HybridRetriever(new WithText(dense, text), new WithText(new Bm25Retriever(collection), query));
        SearchResponse response = await new SearchPipeline(hybrid).SearchAsync(query, search, cancellationToken).ConfigureAwait(false);
        foreach (var result in Results(collection, response, options.Skip, options.ScoreThreshold, r => r.FusedScore!.Value))
            yield return result;
    }

    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreCollectionMetadata))
            return new VectorStoreCollectionMetadata { VectorStoreSystemName = FunnelVectorStore.SystemName, VectorStoreName = _handle.StoreName, CollectionName = Name };
        if (serviceType == typeof(Collection)) return _handle.Existing();
        if (serviceType.IsInstanceOfType(_biEncoder)) return _biEncoder;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    private Collection Require() => _handle.Existing()
        ?? throw new VectorStoreException($"collection '{Name}' does not exist; call EnsureCollectionExistsAsync first")
        {
            VectorStoreSystemName = FunnelVectorStore.SystemName, VectorStoreName = _handle.StoreName, CollectionName = Name,
        };

    private (IRetriever Dense, string Text) Dense<TInput>(Collection collection, TInput searchValue) => searchValue switch
    {
        string text when Document.QueryProblem(text) is { } problem => throw new ArgumentException(problem, nameof(searchValue)),
        string text => (new DenseRetriever(collection, _biEncoder), text),
        ReadOnlyMemory<float> vector => (new DenseRetriever(collection, new GivenQueryVector(vector)), ""),
        float[] vector => (new DenseRetriever(collection, new GivenQueryVector(vector)), ""),
        Embedding<float> embedding => (new DenseRetriever(collection, new GivenQueryVector(embedding.Vector)), ""),
        _ => throw new NotSupportedException(
            $"a search value of type {typeof(TInput).Name}: Funnel searches by a string (embedded by the bi-encoder) or a ReadOnlyMemory<float>, float[] or Embedding<float>"),
    };

    private static int Wanted(int top, int skip)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(top);
        ArgumentOutOfRangeException.ThrowIfNegative(skip);
        return (int)Math.Min(int.MaxValue, (long)top + skip);
    }

    private IEnumerable<VectorSearchResult<TRecord>> Results(Collection collection, SearchResponse response, int skip, double? threshold, Func<SearchResult, double> score)
    {
        bool distance = collection.Manifest.VectorIndex.Metric == DistanceMetric.L2;
        foreach (SearchResult result in response.Results.Skip(skip))
        {
            double s = score(result);
            // Similarities pass a threshold from above, distances from below (VectorData's convention).
            if (threshold is { } t && (distance && result.FusedScore is null ? s > t : s < t)) continue;
            if (collection.Get(result.DocumentId) is { } document) // else deleted since the search
                yield return new VectorSearchResult<TRecord>(_mapping.ToRecord<TRecord>(document), s);
        }
    }

    /// <summary>A dense score as VectorData reports it: Funnel ranks Euclidean hits by −distance, VectorData by the distance.</summary>
    private static double Score(Collection collection, float score) =>
        collection.Manifest.VectorIndex.Metric == DistanceMetric.L2 ? -score : score;

    private static void CheckNoVectors(bool includeVectors)
    {
        if (includeVectors)
            throw new NotSupportedException("IncludeVectors: a Funnel collection holds one normalised vector per chunk of a record's text, not the record's vector, so it cannot return it");
    }

    /// <summary>The collection settings a record definition asks for (null: Funnel's defaults, cosine HNSW).</summary>
    private static VectorIndexSettings VectorIndex(string? distanceFunction, string? indexKind) => new()
    {
        Metric = distanceFunction switch
        {
            null or Microsoft.Extensions.VectorData.DistanceFunction.CosineSimilarity => DistanceMetric.Cosine,
            Microsoft.Extensions.VectorData.DistanceFunction.DotProductSimilarity => DistanceMetric.DotProduct,
            Microsoft.Extensions.VectorData.DistanceFunction.EuclideanDistance => DistanceMetric.L2,
            _ => throw new NotSupportedException($"distance function '{distanceFunction}': Funnel supports CosineSimilarity, DotProductSimilarity and EuclideanDistance"),
        },
        Kind = indexKind switch
        {
            null or Microsoft.Extensions.VectorData.IndexKind.Hnsw => VectorIndexKind.Hnsw,
            Microsoft.Extensions.VectorData.IndexKind.Flat => VectorIndexKind.Flat,
            _ => throw new NotSupportedException($"index kind '{indexKind}': Funnel supports Hnsw and Flat"),
        },
    };

    /// <summary>A query vector the caller computed, handed to <see cref="DenseRetriever"/> as if embedded.</summary>
    private sealed class GivenQueryVector(ReadOnlyMemory<float> vector) : IEmbeddingGenerator<string, Embedding<float>>
    {
        public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
            CancellationToken cancellationToken = default) =>
            Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(_ => new Embedding<float>(vector))));

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    /// <summary>A retriever that searches for <paramref name="text"/> whatever the query's text: one side of a hybrid search.</summary>
    private sealed class WithText(IRetriever inner, string text) : IRetriever
    {
        public Task<RetrievalBatch> RetrieveAsync(IReadOnlyList<RetrievalQuery> queries, CancellationToken cancellationToken = default) =>
            inner.RetrieveAsync([.. queries.Select(q => q with { Text = text })], cancellationToken);
    }
}
