using Funnel.Retrieval;

namespace Funnel.Cluster;

/// <summary>A document with its chunks and one vector per chunk, as it travels between a coordinator and a shard's replicas.</summary>
[GenerateSerializer, Immutable, Alias("funnel.shard-document")]
public sealed record ShardDocument(
    [property: Id(0)] string Id, [property: Id(1)] string Title, [property: Id(2)] string Text, [property: Id(3)] Dictionary<string, string> Metadata,
    [property: Id(4)] int[] ChunkStarts, [property: Id(5)] int[] ChunkEnds, [property: Id(6)] float[][] Vectors)
{
    public static ShardDocument Of(EmbeddedDocument d) => new(d.Document.Id, d.Document.Title, d.Document.Text,
        new Dictionary<string, string>(d.Document.Metadata, StringComparer.Ordinal),
        [.. d.Chunks.Select(c => c.Start)], [.. d.Chunks.Select(c => c.End)], [.. d.Vectors]);

    public EmbeddedDocument ToEmbedded() => new(new Document(Id, Title, Text, Metadata),
        [.. ChunkStarts.Select((start, i) => new ChunkSpan(start, ChunkEnds[i]))], Vectors);
}

/// <summary>One batch of writes to one shard: documents to upsert, then ids to delete.</summary>
[GenerateSerializer, Immutable, Alias("funnel.shard-write")]
public sealed record ShardWrite([property: Id(0)] ShardDocument[] Upserts, [property: Id(1)] string[] Deletes);

/// <summary>
/// A replica's position in its shard's history: the last batch it applied (its sequence number and id, so that two replicas
/// at the same number but with different batches are told apart) and its document count.
/// </summary>
[GenerateSerializer, Immutable, Alias("funnel.replica-position")]
public sealed record ReplicaPosition([property: Id(0)] long Sequence, [property: Id(1)] Guid BatchId, [property: Id(2)] int Documents);

/// <summary>What a shard acknowledged: the batch's sequence number, the replicas that made it durable, and how many documents it deleted.</summary>
[GenerateSerializer, Immutable, Alias("funnel.shard-ack")]
public sealed record ShardAck([property: Id(0)] long Sequence, [property: Id(1)] string[] Replicas, [property: Id(2)] int Deleted);

/// <summary>Which replicas of a shard may serve reads now (in sync with the shard's last batch), and that batch's number.</summary>
[GenerateSerializer, Immutable, Alias("funnel.shard-readers")]
public sealed record ShardReaders([property: Id(0)] string[] Nodes, [property: Id(1)] long Sequence);

/// <summary>A shard's part of a query: how many documents, the metadata filter, the HNSW beam and documents never to return.</summary>
[GenerateSerializer, Immutable, Alias("funnel.shard-query")]
public sealed record ShardQuery(
    [property: Id(0)] int Candidates, [property: Id(1)] string[]? FilterKeys, [property: Id(2)] string[]? FilterValues, [property: Id(3)] int EfSearch,
    [property: Id(4)] string[] Exclude)
{
    public static ShardQuery Of(SearchOptions options) => new(options.Candidates,
        options.Filter is null ? null : [.. options.Filter.Pairs.Select(p => p.Key)], options.Filter is null ? null : [.. options.Filter.Pairs.Select(p => p.Value)],
        options.EfSearch ?? 0, options.Exclude is null ? [] : [.. options.Exclude]);

    public SearchOptions ToOptions() => new()
    {
        Candidates = Candidates,
        Filter = FilterKeys is null ? null : new MetadataFilter(FilterKeys.Select((k, i) => KeyValuePair.Create(k, FilterValues![i]))),
        EfSearch = EfSearch > 0 ? EfSearch : null,
        Exclude = Exclude.Length == 0 ? null : new HashSet<string>(Exclude, StringComparer.Ordinal),
    };
}

/// <summary>A shard's hit with what the coordinator needs to rerank and answer without asking again.</summary>
[GenerateSerializer, Immutable, Alias("funnel.shard-hit")]
public sealed record ShardHit(
    [property: Id(0)] string Id, [property: Id(1)] float Score, [property: Id(2)] string Title, [property: Id(3)] string Passage,
    [property: Id(4)] Dictionary<string, string> Metadata)
{
    public static ShardHit Of(Candidate c, float score) =>
        new(c.DocumentId, score, c.Title, c.Passage, new Dictionary<string, string>(c.Metadata, StringComparer.Ordinal));
}

/// <summary>A shard's BM25 statistics for a query's terms (see <see cref="Retrieval.Lexical.Bm25Statistics"/>).</summary>
[GenerateSerializer, Immutable, Alias("funnel.shard-bm25-statistics")]
public sealed record ShardBm25Statistics([property: Id(0)] int Documents, [property: Id(1)] long TotalLength, [property: Id(2)] Dictionary<string, int> DocumentFrequencies)
{
    public static ShardBm25Statistics Of(Retrieval.Lexical.Bm25Statistics s) =>
        new(s.DocumentCount, s.TotalLength, new Dictionary<string, int>(s.DocumentFrequencies, StringComparer.Ordinal));

    public Retrieval.Lexical.Bm25Statistics ToStatistics() => new(Documents, TotalLength, DocumentFrequencies);
}

/// <summary>What a node runs: its name, Funnel's version and its bi-encoder (null: none), as JSON of the fingerprint.</summary>
[GenerateSerializer, Immutable, Alias("funnel.node-info")]
public sealed record NodeInfo([property: Id(0)] string Name, [property: Id(1)] string FunnelVersion, [property: Id(2)] string? BiEncoderJson);
