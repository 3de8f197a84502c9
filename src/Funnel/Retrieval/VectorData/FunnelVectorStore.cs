// The abstractions' provider services (record model, filter helpers) are what every VectorData provider builds on; they are
// marked experimental (MEVD9001) because their shape may still change between releases.
#pragma warning disable MEVD9001
using System.Runtime.CompilerServices;
using Funnel.Inference;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace Funnel.Retrieval.VectorData;

public sealed record FunnelVectorStoreOptions
{
    internal const int DefaultHybridCandidates = 100;

    /// <summary>How collections the store creates chunk and index (null: the bi-encoder's window, cosine HNSW); a record
    /// definition's distance function and index kind override <see cref="CollectionOptions.VectorIndex"/>.</summary>
    public CollectionOptions? NewCollections { get; init; }

    /// <summary>Candidates each side of a hybrid search fetches before fusion (at least top + skip), as <see cref="SearchOptions.Candidates"/>.</summary>
    public int HybridCandidates { get; init; } = DefaultHybridCandidates;
}

/// <summary>
/// A folder of Funnel collections (one sub-folder each, as <c>funnel serve --collections</c> serves them) as a
/// Microsoft.Extensions.VectorData <see cref="VectorStore"/>. Collections are opened for writing on first use and shared by
/// every <see cref="GetCollection{TKey, TRecord}"/> of the same name; disposing the store closes them.
/// </summary>
public sealed class FunnelVectorStore : VectorStore
{
    internal const string SystemName = "funnel";

    private readonly IEmbeddingGenerator<string, Embedding<float>> _biEncoder;
    private readonly FunnelVectorStoreOptions _options;
    private readonly Dictionary<string, Collection> _open = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <param name="folder">The collections' parent folder (created if needed).</param>
    /// <param name="biEncoder">Embeds records and queries: a <see cref="SentenceEncoder"/> or middleware around one.</param>
    public FunnelVectorStore(string folder, IEmbeddingGenerator<string, Embedding<float>> biEncoder, FunnelVectorStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(biEncoder);
        _options = options ?? new FunnelVectorStoreOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_options.HybridCandidates, nameof(options));
        Folder = Path.GetFullPath(folder);
        if (File.Exists(Folder)) throw new CollectionFolderException($"'{Folder}' is a file; a vector store needs a folder");
        Directory.CreateDirectory(Folder);
        _biEncoder = biEncoder;
    }

    public string Folder { get; }

    public override VectorStoreCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, VectorStoreCollectionDefinition? definition = null) =>
        new FunnelVectorStoreCollection<TKey, TRecord>(new CollectionHandle.Stored(this, CheckName(name)), _biEncoder, definition, _options.HybridCandidates, dynamic: false);

    public override VectorStoreCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, VectorStoreCollectionDefinition definition) =>
        new FunnelVectorStoreCollection<object, Dictionary<string, object?>>(new CollectionHandle.Stored(this, CheckName(name)), _biEncoder, definition, _options.HybridCandidates, dynamic: true);

    public override async IAsyncEnumerable<string> ListCollectionNamesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (string dir in Directory.EnumerateDirectories(Folder).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            string name = Path.GetFileName(dir);
            if (CollectionNames.IsValid(name) && File.Exists(Path.Combine(dir, CollectionManifest.FileName))) yield return name;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    public override Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(File.Exists(Path.Combine(Folder, CheckName(name), CollectionManifest.FileName)));

    public override Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default)
    {
        Delete(CheckName(name));
        return Task.CompletedTask;
    }

    /// <summary>
    /// The store's open collection of this name, for Funnel's own API (a <see cref="SearchPipeline"/> with reranking, ingest
    /// through <see cref="CollectionIndexer"/>): the same instance its VectorData collections use. Created (cosine HNSW,
    /// <see cref="FunnelVectorStoreOptions.NewCollections"/>) when the folder has none.
    /// </summary>
    public Collection OpenCollection(string name) =>
        GetOrCreate(CheckName(name), _biEncoder.GetService<SentenceEncoder>()
            ?? throw new InvalidOperationException("the store's bi-encoder is not a Funnel SentenceEncoder (nor middleware around one), so it cannot create a collection"),
            _options.NewCollections?.VectorIndex ?? new VectorIndexSettings());

    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreMetadata)) return new VectorStoreMetadata { VectorStoreSystemName = SystemName, VectorStoreName = Folder };
        if (serviceType.IsInstanceOfType(_biEncoder)) return _biEncoder;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            lock (_open)
            {
                _disposed = true;
                foreach (Collection collection in _open.Values) collection.Dispose();
                _open.Clear();
            }
        base.Dispose(disposing);
    }

    /// <summary>The open collection of this name, opened now if its folder holds one (null: none there).</summary>
    internal Collection? Existing(string name)
    {
        lock (_open)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_open.TryGetValue(name, out Collection? open)) return open;
            string folder = Path.Combine(Folder, name);
            if (!File.Exists(Path.Combine(folder, CollectionManifest.FileName))) return null;
            Collection collection = Collection.Open(folder);
            return _open[name] = collection;
        }
    }

    internal Collection GetOrCreate(string name, SentenceEncoder encoder, VectorIndexSettings vectorIndex)
    {
        lock (_open)
        {
            if (Existing(name) is { } existing) return existing;
            var options = (_options.NewCollections ?? new CollectionOptions()) with { VectorIndex = vectorIndex };
            return _open[name] = Collection.Create(Path.Combine(Folder, name), encoder, options);
        }
    }

    /// <summary>Closes and removes the collection: renamed out of the store first, so a crash leaves no half-deleted collection.</summary>
    internal void Delete(string name)
    {
        lock (_open)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_open.Remove(name, out Collection? open)) open.Dispose();
            string folder = Path.Combine(Folder, name);
            if (!Directory.Exists(folder)) return;
            // A leading '.' is not a valid collection name: the renamed folder is never listed.
            string doomed = Path.Combine(Folder, $".{name}.{Guid.NewGuid():N}.deleting");
            Directory.Move(folder, doomed);
            Directory.Delete(doomed, recursive: true);
        }
    }

    private static string CheckName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!CollectionNames.IsValid(name))
            throw new ArgumentException($"{System.Text.Json.JsonSerializer.Serialize(name)} is not a valid collection name: {CollectionNames.Rule}", nameof(name));
        return name;
    }
}

/// <summary>Where a <see cref="FunnelVectorStoreCollection{TKey, TRecord}"/> finds its collection: a store's folder, or one it was given.</summary>
internal abstract class CollectionHandle
{
    public abstract string Name { get; }
    public abstract string? StoreName { get; }
    public abstract Collection? Existing();
    public abstract Collection GetOrCreate(SentenceEncoder encoder, VectorIndexSettings vectorIndex);
    public abstract void Delete();

    public sealed class Stored(FunnelVectorStore store, string name) : CollectionHandle
    {
        public override string Name => name;
        public override string? StoreName => store.Folder;
        public override Collection? Existing() => store.Existing(name);
        public override Collection GetOrCreate(SentenceEncoder encoder, VectorIndexSettings vectorIndex) => store.GetOrCreate(name, encoder, vectorIndex);
        public override void Delete() => store.Delete(name);
    }

    /// <summary>An open collection its caller owns: it exists, and deleting it is the caller's business.</summary>
    public sealed class Given(Collection collection) : CollectionHandle
    {
        private readonly Collection _collection = collection ?? throw new ArgumentNullException(nameof(collection));

        public override string Name => Path.GetFileName(_collection.Folder);
        public override string? StoreName => null;
        public override Collection? Existing() => _collection;
        public override Collection GetOrCreate(SentenceEncoder encoder, VectorIndexSettings vectorIndex) => _collection;

        public override void Delete() =>
            throw new NotSupportedException($"collection '{Name}' was handed to this adapter open; delete it through a FunnelVectorStore or by removing its folder");
    }
}
