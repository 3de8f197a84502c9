using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Funnel.Tests.Hub;

/// <summary>
/// A Hugging Face Hub on 127.0.0.1 (Kestrel, port 0) speaking the wire protocol huggingface_hub relies on:
/// <c>/api/models/{id}/revision/{rev}</c>, HEAD/GET <c>/{id}/resolve/{rev}/{path}</c> (200 with a git-sha1 ETag for
/// plain files, 302 to an absolute CDN URL with <c>X-Linked-Etag</c>/<c>X-Linked-Size</c> for LFS files),
/// <c>X-Repo-Commit</c>, <c>X-Error-Code</c>, and a CDN honouring <c>Range</c>. Faults can be injected per LFS blob.
/// </summary>
internal sealed class FakeHub : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, FakeRepo> _repos = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]> _cdn = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Fault> _faults = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _renamed = new(StringComparer.Ordinal);

    private FakeHub(WebApplication app) => _app = app;

    public Uri Endpoint { get; private set; } = null!;

    /// <summary>Every request in arrival order.</summary>
    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>Answer this many upcoming API calls with HTTP 503.</summary>
    public int ApiFailuresToServe;

    /// <summary>Answer everything with an HTML page, as a captive portal or a wrong HF_ENDPOINT does.</summary>
    public bool ServeHtml { get; set; }

    public static async Task<FakeHub> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        WebApplication app = builder.Build();
        var hub = new FakeHub(app);
        app.Run(hub.HandleAsync);
        await app.StartAsync();
        string address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        hub.Endpoint = new Uri(address);
        return hub;
    }

    public FakeRepo AddRepo(string repoId, string? token = null, bool gated = false)
    {
        var repo = new FakeRepo(repoId, token, gated);
        _repos[repoId] = repo;
        return repo;
    }

    /// <summary>Requests for <paramref name="oldId"/> get a relative 307 to <paramref name="newId"/>, as for a renamed repository.</summary>
    public void Rename(string oldId, string newId) => _renamed[oldId] = newId;

    /// <summary>The next download of this blob stops after <paramref name="afterBytes"/> and the connection is cut.</summary>
    public void DropOnce(byte[] content, long afterBytes) => _faults[Sha256(content)] = new Fault(FaultKind.Drop, afterBytes, null);

    /// <summary>Every download of this blob serves different bytes of the same length.</summary>
    public void Corrupt(byte[] content) => _faults[Sha256(content)] = new Fault(FaultKind.Corrupt, 0, null);

    /// <summary>The next download of this blob sends <paramref name="afterBytes"/>, then waits for the returned gate.</summary>
    public TaskCompletionSource StallOnce(byte[] content, long afterBytes)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _faults[Sha256(content)] = new Fault(FaultKind.Stall, afterBytes, gate);
        return gate;
    }

    public IEnumerable<RecordedRequest> CdnRequests => Requests.Where(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        foreach (Fault fault in _faults.Values) fault.Gate?.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public static string Sha256(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>The id git gives a blob, which the Hub uses as the ETag of non-LFS files.</summary>
    public static string GitBlobSha1(byte[] content) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));

    private async Task HandleAsync(HttpContext context)
    {
        HttpRequest request = context.Request;
        string path = Uri.UnescapeDataString(request.Path.Value ?? "");
        Requests.Enqueue(new RecordedRequest(request.Method, path, request.Headers.Range.ToString() is { Length: > 0 } r ? r : null,
            request.Headers.Authorization.ToString() is { Length: > 0 } a ? a : null));

        if (ServeHtml)
        {
            context.Response.ContentType = "text/html";
            await context.Response.WriteAsync("<html><body>Sign in to continue</body></html>");
            return;
        }
        string[] parts = path.TrimStart('/').Split('/');
        int repoAt = parts is ["api", "models", ..] ? 2 : 0;
        if (parts.Length > repoAt + 1 && _renamed.TryGetValue($"{parts[repoAt]}/{parts[repoAt + 1]}", out string? newId))
        {
            context.Response.StatusCode = 307;
            context.Response.Headers.Location = "/" + string.Join('/', [.. parts[..repoAt], newId, .. parts[(repoAt + 2)..]]);
            return;
        }
        if (parts is ["api", "models", var org, var name, "revision", .. var rev])
            await ServeApiAsync(context, $"{org}/{name}", string.Join('/', rev));
        else if (parts is [var org2, var name2, "resolve", var revision, .. var file] && file.Length > 0)
            await ServeResolveAsync(context, $"{org2}/{name2}", revision, string.Join('/', file));
        else if (parts is ["cdn", var sha])
            await ServeCdnAsync(context, sha);
        else
            context.Response.StatusCode = 404;
    }

    private async Task ServeApiAsync(HttpContext context, string repoId, string revision)
    {
        if (Interlocked.Decrement(ref ApiFailuresToServe) >= 0)
        {
            context.Response.StatusCode = 503;
            return;
        }
        if (Authorize(context, repoId) is not { } repo) return;
        if (repo.CommitOf(revision) is not { } commit)
        {
            Error(context, 404, "RevisionNotFound");
            return;
        }
        var listing = new { id = repoId, sha = commit, siblings = repo.Files(commit).Keys.Select(f => new { rfilename = f }) };
        await context.Response.WriteAsJsonAsync(listing);
    }

    private async Task ServeResolveAsync(HttpContext context, string repoId, string revision, string file)
    {
        if (Authorize(context, repoId) is not { } repo) return;
        if (repo.CommitOf(revision) is not { } commit)
        {
            Error(context, 404, "RevisionNotFound");
            return;
        }
        if (!repo.Files(commit).TryGetValue(file, out FakeFile? entry) || repo.Hidden.Contains(file))
        {
            Error(context, 404, "EntryNotFound");
            return;
        }
        HttpResponse response = context.Response;
        response.Headers["X-Repo-Commit"] = commit;
        if (entry.Lfs)
        {
            string sha = Sha256(entry.Content);
            _cdn[sha] = entry.Content;
            response.StatusCode = 302;
            response.Headers.ETag = $"\"{GitBlobSha1(entry.Content)}\"";
            response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
            response.Headers["X-Linked-Size"] = entry.Content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // Another host name for the same server, as the Hub's CDN is another host.
            response.Headers.Location = $"http://localhost:{Endpoint.Port}/cdn/{sha}";
            return;
        }
        response.Headers.ETag = $"\"{GitBlobSha1(entry.Content)}\"";
        response.ContentLength = entry.Content.Length;
        if (!HttpMethods.IsHead(context.Request.Method)) await response.Body.WriteAsync(entry.Content);
    }

    private async Task ServeCdnAsync(HttpContext context, string sha)
    {
        if (!_cdn.TryGetValue(sha, out byte[]? content))
        {
            context.Response.StatusCode = 404;
            return;
        }
        Fault? fault = _faults.TryGetValue(sha, out Fault? f) ? f : null;
        if (fault is { Kind: FaultKind.Drop or FaultKind.Stall }) _faults.TryRemove(sha, out _);
        if (fault is { Kind: FaultKind.Corrupt })
        {
            content = (byte[])content.Clone();
            content[content.Length / 2] ^= 0x5A;
        }

        long from = 0;
        string range = context.Request.Headers.Range.ToString();
        if (range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
            from = long.Parse(range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
        HttpResponse response = context.Response;
        response.Headers.ETag = $"\"{sha}\"";
        if (from >= content.Length && from > 0)
        {
            response.StatusCode = 416;
            return;
        }
        if (from > 0)
        {
            response.StatusCode = 206;
            response.Headers.ContentRange = $"bytes {from}-{content.Length - 1}/{content.Length}";
        }
        response.ContentLength = content.Length - from;
        ReadOnlyMemory<byte> body = content.AsMemory((int)from);

        if (fault is { Kind: FaultKind.Drop or FaultKind.Stall })
        {
            int first = (int)Math.Min(fault.AfterBytes, body.Length);
            await response.Body.WriteAsync(body[..first]);
            await response.Body.FlushAsync();
            if (fault.Kind == FaultKind.Drop)
            {
                context.Abort();
                return;
            }
            try
            {
                await fault.Gate!.Task.WaitAsync(context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            body = body[first..];
        }
        await response.Body.WriteAsync(body);
    }

    private FakeRepo? Authorize(HttpContext context, string repoId)
    {
        if (!_repos.TryGetValue(repoId, out FakeRepo? repo))
        {
            Error(context, 404, "RepoNotFound");
            return null;
        }
        if (repo.Token is { } token && context.Request.Headers.Authorization.ToString() != $"Bearer {token}")
        {
            Error(context, 401, repo.Gated ? "GatedRepo" : null);
            return null;
        }
        return repo;
    }

    private static void Error(HttpContext context, int status, string? code)
    {
        context.Response.StatusCode = status;
        if (code is not null) context.Response.Headers["X-Error-Code"] = code;
    }

    private enum FaultKind { Drop, Corrupt, Stall }

    private sealed record Fault(FaultKind Kind, long AfterBytes, TaskCompletionSource? Gate);
}

internal sealed record RecordedRequest(string Method, string Path, string? Range, string? Authorization);

internal sealed record FakeFile(byte[] Content, bool Lfs);

/// <summary>A repository of the fake hub: commits of files, branches pointing at commits.</summary>
internal sealed class FakeRepo(string repoId, string? token, bool gated)
{
    private readonly ConcurrentDictionary<string, Dictionary<string, FakeFile>> _commits = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _branches = new(StringComparer.Ordinal);

    public string RepoId { get; } = repoId;
    public string? Token { get; } = token;
    public bool Gated { get; } = gated;

    /// <summary>Files listed by the API whose resolve URL answers 404.</summary>
    public HashSet<string> Hidden { get; } = [];

    /// <summary>Adds a commit holding <paramref name="files"/> and points <paramref name="branch"/> at it; returns the commit.</summary>
    public string Commit(IReadOnlyDictionary<string, FakeFile> files, string branch = "main")
    {
        string commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes($"{RepoId}:{_commits.Count}:{JsonSerializer.Serialize(files.Keys)}")));
        _commits[commit] = new Dictionary<string, FakeFile>(files, StringComparer.Ordinal);
        _branches[branch] = commit;
        return commit;
    }

    public string? CommitOf(string revision) =>
        _commits.ContainsKey(revision) ? revision : _branches.TryGetValue(revision, out string? commit) ? commit : null;

    public IReadOnlyDictionary<string, FakeFile> Files(string commit) => _commits[commit];
}
