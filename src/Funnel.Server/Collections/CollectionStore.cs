using Funnel.Inference;
using Funnel.Retrieval;
using Funnel.Server.Http;

namespace Funnel.Server.Collections;

/// <summary>An open collection with what the service needs beside it: a count of the requests using it, so that deleting it
/// waits for them instead of freeing memory a search still reads. Writes need no gate here: the collection serializes them
/// (and <see cref="Collection.AddAsync"/> checks for existing ids in the same step).</summary>
internal sealed class ServedCollection(string name, Collection collection) : IDisposable
{
    private readonly Lock _usage = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _users;
    private bool _closing;

    public string Name { get; } = name;
    public Collection Collection { get; } = collection;

    /// <summary>Counts a request in; false once the collection is closing.</summary>
    internal bool TryEnter()
    {
        lock (_usage)
        {
            if (_closing) return false;
            _users++;
            return true;
        }
    }

    internal void Exit()
    {
        lock (_usage)
            if (--_users == 0 && _closing) _idle.TrySetResult();
    }

    /// <summary>Refuses new requests; the task completes when the last one in has left.</summary>
    internal Task CloseAsync()
    {
        lock (_usage)
        {
            _closing = true;
            if (_users == 0) _idle.TrySetResult();
        }
        return _idle.Task;
    }

    public void Dispose() => Collection.Dispose();
}

/// <summary>A request's use of a collection: it stays open (not disposed by a concurrent delete) until this is disposed.</summary>
internal readonly struct CollectionLease(ServedCollection collection) : IDisposable
{
    public ServedCollection Collection { get; } = collection;

    public void Dispose() => Collection.Exit();
}

/// <summary>
/// The collections under one folder (one sub-folder each), opened on first use and kept open (each holds its writer
/// lock) until deleted or the service stops. Names are restricted so they are always a single safe path segment.
/// </summary>
internal sealed class CollectionStore : IDisposable
{
    private readonly string _root;
    private readonly SentenceEncoder? _biEncoder;
    private readonly Dictionary<string, ServedCollection> _open = new(StringComparer.Ordinal);
    private readonly HashSet<string> _deleting = new(StringComparer.Ordinal);
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
            .Where(CollectionNames.IsValid)
            .Order(StringComparer.Ordinal)];

    /// <summary>The open collection called <paramref name="name"/>, held open until the lease is disposed; 404 when there is none.</summary>
    public CollectionLease Use(string name)
    {
        CheckName(name, "name");
        lock (_gate)
        {
            if (_deleting.Contains(name)) throw ApiException.NotFound($"collection '{name}' is being deleted");
            if (!_open.TryGetValue(name, out ServedCollection? served))
            {
                string folder = Folder(name);
                if (!File.Exists(Path.Combine(folder, CollectionManifest.FileName)))
                    throw ApiException.NotFound($"there is no collection '{name}' (GET /collections lists them)");
                served = _open[name] = Serve(name, Opened(name, () => Collection.Open(folder)));
            }
            // Collections leave _open under this lock before they start closing, so this cannot fail.
            if (!served.TryEnter()) throw new InvalidOperationException($"collection '{name}' is closing");
            return new CollectionLease(served);
        }
    }

    /// <summary>Creates an empty collection for this server's bi-encoder and leases it; 409 when the name is taken.</summary>
    public CollectionLease Create(string name, CollectionOptions options)
    {
        CheckName(name, "name");
        SentenceEncoder biEncoder = _biEncoder ?? throw ApiException.NotFound(
            "creating a collection needs a bi-encoder to embed its documents; start the server with --bi-encoder MODEL");
        lock (_gate)
        {
            string folder = Folder(name);
            if (_deleting.Contains(name)) throw ApiException.Conflict($"collection '{name}' is being deleted; retry once it is gone", "name");
            if (_open.ContainsKey(name) || Directory.Exists(folder))
                throw ApiException.Conflict($"a collection named '{name}' already exists", "name");
            ServedCollection served = _open[name] = Serve(name, Opened(name, () => Collection.Create(folder, biEncoder, options)));
            served.TryEnter();
            return new CollectionLease(served);
        }
    }

    /// <summary>Removes a collection: new requests get 404 at once, requests already using it finish, then it is closed
    /// and its folder deleted; 404 when there is none.</summary>
    public async Task DeleteAsync(string name)
    {
        ServedCollection served;
        using (CollectionLease lease = Use(name))
        {
            served = lease.Collection;
            lock (_gate)
            {
                // A concurrent delete of the same name got here first.
                if (!_deleting.Add(name)) throw ApiException.NotFound($"there is no collection '{name}' (GET /collections lists them)");
                _open.Remove(name);
            }
        }
        try
        {
            await served.CloseAsync();
            served.Dispose();
            // Renamed first so that a crash mid-delete leaves no half collection behind.
            string doomed = Path.Combine(_root, $".deleted-{name}-{Guid.NewGuid():N}");
            Directory.Move(Folder(name), doomed);
            Directory.Delete(doomed, recursive: true);
        }
        finally
        {
            lock (_gate) _deleting.Remove(name);
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
            // Searches embed queries with this server's bi-encoder: it must be the one the collection was indexed with.
            if (_biEncoder is not null) collection.EnsureBiEncoder(_biEncoder.Fingerprint);
            return new ServedCollection(name, collection);
        }
        catch (BiEncoderMismatchException mismatch)
        {
            string detail = Public(mismatch.Message, collection.BiEncoder.Model);
            collection.Dispose();
            throw ApiException.Conflict(detail);
        }
    }

    /// <summary>
    /// Opens a collection, turning why it cannot be into a problem the client can act on: a folder another process writes
    /// to (e.g. <c>funnel index</c>) is a conflict it can wait out; damaged files are the server's fault and named (by their
    /// place in the collection, never the server's absolute path) so that an operator can run <c>funnel collection recover</c>.
    /// </summary>
    private Collection Opened(string name, Func<Collection> open)
    {
        try
        {
            return open();
        }
        catch (FunnelException busy) when (busy.Kind == FunnelErrorKind.Conflict)
        {
            throw ApiException.Conflict(Public(busy.Message));
        }
        catch (Exception e) when (e is FunnelException { Kind: FunnelErrorKind.Corrupt } or InvalidDataException)
        {
            throw new ApiException(FunnelErrorKind.Corrupt, $"collection '{name}' cannot be opened: {Public(e.Message)}", title: "Collection unavailable");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The system refused (no permission, too many open files): not the data's fault, and perhaps passing.
            throw new ApiException(FunnelErrorKind.Unavailable, $"collection '{name}' cannot be opened: {Public(e.Message)}", title: "Collection unavailable");
        }
    }

    /// <summary>A message for clients: the server's own folders (the collections root, the model folders) by name only.</summary>
    private string Public(string message, params string?[] models)
    {
        foreach (string? model in models.Append(_biEncoder?.Fingerprint.Model))
            if (model is not null && Path.IsPathRooted(model))
                message = message.Replace(model, Path.GetFileName(Path.TrimEndingDirectorySeparator(model)), StringComparison.Ordinal);
        return message.Replace(_root + Path.DirectorySeparatorChar, "", StringComparison.Ordinal).Replace(_root, ".", StringComparison.Ordinal);
    }

    private string Folder(string name) => Path.Combine(_root, name);

    internal static void CheckName(string name, string field)
    {
        if (!CollectionNames.IsValid(name))
            throw ApiException.Invalid(field, $"{System.Text.Json.JsonSerializer.Serialize(name)} is not a valid collection name: {CollectionNames.Rule}");
    }
}
