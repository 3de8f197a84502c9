using System.Text.RegularExpressions;
using Funnel.Inference;
using Funnel.Retrieval;
using Funnel.Server.Http;

namespace Funnel.Server.Collections;

/// <summary>An open collection with what the service needs beside it: a search pipeline and a write gate.</summary>
public sealed class ServedCollection(string name, Collection collection, SearchPipeline pipeline) : IDisposable
{
    public string Name { get; } = name;
    public Collection Collection { get; } = collection;
    public SearchPipeline Pipeline { get; } = pipeline;

    /// <summary>Serializes writes, so that "add" can check for existing ids and write as one step.</summary>
    public SemaphoreSlim WriteGate { get; } = new(1, 1);

    public void Dispose()
    {
        Collection.Dispose();
        WriteGate.Dispose();
    }
}

/// <summary>
/// The collections under one folder (one sub-folder each), opened on first use and kept open (each holds its writer
/// lock) until deleted or the service stops. Names are restricted so they are always a single safe path segment.
/// </summary>
public sealed partial class CollectionStore : IDisposable
{
    private readonly string _root;
    private readonly SentenceEncoder? _biEncoder;
    private readonly Dictionary<string, ServedCollection> _open = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public CollectionStore(string root, SentenceEncoder? biEncoder)
    {
        _root = Path.GetFullPath(root);
        _biEncoder = biEncoder;
        Directory.CreateDirectory(_root);
    }

    public SentenceEncoder? BiEncoder => _biEncoder;

    /// <summary>Names of the collections on disk, sorted.</summary>
    public IReadOnlyList<string> Names() =>
        [.. Directory.EnumerateDirectories(_root)
            .Where(dir => File.Exists(Path.Combine(dir, CollectionManifest.FileName)))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(name => ValidName().IsMatch(name))
            .Order(StringComparer.Ordinal)];

    /// <summary>The open collection called <paramref name="name"/>; 404 when there is none.</summary>
    public ServedCollection Get(string name)
    {
        CheckName(name, "name");
        lock (_gate)
        {
            if (_open.TryGetValue(name, out ServedCollection? open)) return open;
            string folder = Folder(name);
            if (!File.Exists(Path.Combine(folder, CollectionManifest.FileName)))
                throw ApiException.NotFound($"there is no collection '{name}' (GET /collections lists them)");
            return _open[name] = Serve(name, Opened(() => Collection.Open(folder)));
        }
    }

    /// <summary>Creates an empty collection for this server's bi-encoder; 409 when the name is taken.</summary>
    public ServedCollection Create(string name, CollectionOptions options)
    {
        CheckName(name, "name");
        SentenceEncoder biEncoder = _biEncoder ?? throw ApiException.NotFound(
            "creating a collection needs a bi-encoder to embed its documents; start the server with --bi-encoder MODEL");
        lock (_gate)
        {
            string folder = Folder(name);
            if (_open.ContainsKey(name) || Directory.Exists(folder))
                throw ApiException.Conflict($"a collection named '{name}' already exists", "name");
            return _open[name] = Serve(name, Opened(() => Collection.Create(folder, biEncoder, options)));
        }
    }

    /// <summary>Closes and removes a collection's folder; 404 when there is none.</summary>
    public void Delete(string name)
    {
        ServedCollection collection = Get(name);
        collection.WriteGate.Wait();
        lock (_gate)
        {
            _open.Remove(name);
            collection.Dispose();
            // Renamed first so the collection disappears at once and a crash mid-delete leaves no half collection behind.
            string doomed = Path.Combine(_root, $".deleted-{name}-{Guid.NewGuid():N}");
            Directory.Move(Folder(name), doomed);
            Directory.Delete(doomed, recursive: true);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (ServedCollection collection in _open.Values) collection.Dispose();
            _open.Clear();
        }
    }

    private ServedCollection Serve(string name, Collection collection)
    {
        try
        {
            return new ServedCollection(name, collection, new SearchPipeline(collection, _biEncoder));
        }
        catch (BiEncoderMismatchException mismatch)
        {
            collection.Dispose();
            throw ApiException.Conflict(mismatch.Message);
        }
    }

    /// <summary>A folder another process writes to (e.g. <c>funnel index</c>) is a conflict the client can wait out.</summary>
    private static Collection Opened(Func<Collection> open)
    {
        try
        {
            return open();
        }
        catch (CollectionFolderException busy)
        {
            throw ApiException.Conflict(busy.Message);
        }
    }

    private string Folder(string name) => Path.Combine(_root, name);

    private static void CheckName(string name, string field)
    {
        if (!ValidName().IsMatch(name))
            throw ApiException.Invalid(field, $"'{name}' is not a valid collection name: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex ValidName();
}
