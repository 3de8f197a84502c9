using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Funnel.Inference.Hub;

/// <summary>A repository at one commit: its commit hash and every file path in it.</summary>
internal sealed record RepoInfo(string Commit, IReadOnlyList<string> Files);

/// <summary>Where and what one file is: its blob name (etag), size, and the URL its bytes come from.</summary>
internal sealed record FileMetadata(string Path, string Etag, long Size, Uri Location)
{
    /// <summary>LFS files are named by their SHA-256, which the download can be checked against.</summary>
    public bool EtagIsSha256 => Etag.Length == 64 && Etag.All(char.IsAsciiHexDigitLower);
}

/// <summary>
/// The Hub's HTTP protocol as huggingface_hub speaks it: the revision API, HEAD on <c>resolve</c> URLs (stopping at
/// the absolute redirect to the CDN, whose headers carry the metadata), ranged GETs, error headers, retries.
/// </summary>
internal sealed partial class HubApi(HubOptions options, HttpClient http)
{
    private const int MaxRedirects = 10;
    private static readonly ProductInfoHeaderValue UserAgent =
        new("funnel", typeof(HubApi).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0");

    public async Task<RepoInfo> GetRepoInfoAsync(HubModelId id, CancellationToken ct)
    {
        Uri url = Url($"api/models/{id.RepoId}/revision/{Uri.EscapeDataString(id.Revision)}");
        return await WithRetriesAsync(url, async () =>
        {
            using HttpResponseMessage response = await SendAsync(HttpMethod.Get, url, rangeFrom: null, followAbsoluteRedirects: true, ct);
            if (response.StatusCode != HttpStatusCode.OK) throw Error(response, id, file: null);
            await using Stream body = await response.Content.ReadAsStreamAsync(ct);
            try
            {
                return ParseRepoInfo(await JsonDocument.ParseAsync(body, cancellationToken: ct), url);
            }
            catch (JsonException e)
            {
                throw new HubException(HubErrorKind.Unsupported, $"{url} did not answer with JSON ({e.Message}); is HF_ENDPOINT ({options.Endpoint}) a Hugging Face Hub?", e);
            }
        }, ct);
    }

    /// <summary>HEAD on the file's resolve URL; relative redirects (renamed repositories) are followed, the CDN one is not.</summary>
    public async Task<FileMetadata> GetFileMetadataAsync(HubModelId id, string commit, string path, CancellationToken ct)
    {
        Uri url = Url($"{id.RepoId}/resolve/{commit}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}");
        return await WithRetriesAsync(url, async () =>
        {
            using HttpResponseMessage response = await SendAsync(HttpMethod.Head, url, rangeFrom: null, followAbsoluteRedirects: false, ct);
            bool redirect = IsRedirect(response.StatusCode);
            if (response.StatusCode != HttpStatusCode.OK && !redirect) throw Error(response, id, path);

            Uri requested = response.RequestMessage?.RequestUri ?? url;
            string? etag = Header(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag;
            string? size = Header(response, "X-Linked-Size") ?? response.Content.Headers.ContentLength?.ToString(System.Globalization.CultureInfo.InvariantCulture);
            etag = etag is null ? null : NormalizeEtag(etag);
            if (etag is null || !SafeEtag().IsMatch(etag))
                throw new HubException(HubErrorKind.Unsupported, $"{requested} returned no usable ETag (got '{etag}'); is HF_ENDPOINT ({options.Endpoint}) a Hugging Face Hub?");
            if (!long.TryParse(size, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long bytes))
                throw new HubException(HubErrorKind.Unsupported, $"{requested} returned no file size (X-Linked-Size or Content-Length)");
            if (Header(response, "X-Repo-Commit") is { } served && served != commit)
                throw new HubException(HubErrorKind.Unsupported, $"{requested} answered for commit {served}, not the requested {commit}");
            Uri location = redirect ? new Uri(requested, response.Headers.Location!) : requested;
            return new FileMetadata(path, etag, bytes, location);
        }, ct);
    }

    /// <summary>
    /// Sends one request and follows redirects by hand: always the relative ones, absolute ones when asked. The token
    /// only ever goes to the endpoint's own host, never to a CDN.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, long? rangeFrom, bool followAbsoluteRedirects, CancellationToken ct)
    {
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, url);
            request.Headers.UserAgent.Add(UserAgent);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (options.Token is { } token && IsEndpointHost(url))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            if (rangeFrom is long from) request.Headers.Range = new RangeHeaderValue(from, null);

            HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            if (response.RequestMessage?.RequestUri is { } sent && sent != url)
            {
                response.Dispose();
                throw new InvalidOperationException("HubOptions.HttpClient follows redirects by itself; create it with AllowAutoRedirect = false so the Hub's metadata headers can be read");
            }
            if (!IsRedirect(response.StatusCode) || response.Headers.Location is not { } location
                || (location.IsAbsoluteUri && !followAbsoluteRedirects))
                return response;
            response.Dispose();
            if (hop == MaxRedirects) throw new HubException(HubErrorKind.Network, $"more than {MaxRedirects} redirects starting from {url}");
            url = new Uri(url, location);
        }
    }

    /// <summary>Runs a request, retrying transient failures with exponential backoff up to <see cref="HubOptions.MaxAttempts"/>.</summary>
    public async Task<T> WithRetriesAsync<T>(Uri url, Func<Task<T>> attempt, CancellationToken ct)
    {
        for (int failures = 1; ; failures++)
        {
            try
            {
                return await attempt();
            }
            catch (Exception e) when (IsTransient(e, ct))
            {
                if (failures >= options.MaxAttempts) throw GaveUp(url, failures, e);
                await Task.Delay(RetryDelay(failures), ct);
            }
        }
    }

    /// <summary>Failures worth another attempt: the network, a stalled or cut stream, HTTP 429 and 5xx.</summary>
    public static bool IsTransient(Exception e, CancellationToken ct) =>
        e is HttpRequestException or IOException or TimeoutException or TransientStatusException
        || (e is OperationCanceledException && !ct.IsCancellationRequested);

    public TimeSpan RetryDelay(int failures) =>
        TimeSpan.FromTicks(Math.Min(options.RetryDelay.Ticks * (1L << Math.Min(failures - 1, 16)), TimeSpan.FromSeconds(30).Ticks));

    public HubException GaveUp(Uri url, int attempts, Exception last) =>
        new(HubErrorKind.Network, $"could not download {url} after {attempts} attempts: {Describe(last)}", last,
            (last as TransientStatusException)?.StatusCode);

    /// <summary>The error for a response that is neither success nor redirect; transient statuses are thrown for a retry.</summary>
    public Exception Error(HttpResponseMessage response, HubModelId id, string? file)
    {
        HttpStatusCode status = response.StatusCode;
        Uri? url = response.RequestMessage?.RequestUri;
        if (status == HttpStatusCode.TooManyRequests || (int)status >= 500)
            return new TransientStatusException(status, $"HTTP {(int)status} {response.ReasonPhrase}");

        string repoUrl = $"{options.Endpoint.ToString().TrimEnd('/')}/{id.RepoId}";
        string? code = Header(response, "X-Error-Code");
        string detail = Header(response, "X-Error-Message") is { } message ? $" ({message})" : "";
        string tokenHint = options.Token is null
            ? "set HF_TOKEN to a token with read access"
            : "the token in HF_TOKEN has no access to it; use one that has";
        HubException Fail(HubErrorKind kind, string message) => new(kind, message + detail, statusCode: status);

        if (code == "GatedRepo")
            return Fail(HubErrorKind.Unauthorized, $"model {id.RepoId} is gated: accept its conditions at {repoUrl}, then {tokenHint}");
        if (code == "RevisionNotFound")
            return Fail(HubErrorKind.NotFound, $"model {id.RepoId} has no revision '{id.Revision}' (branch, tag or commit)");
        if (code == "RepoNotFound")
            return Fail(HubErrorKind.NotFound, $"no model '{id.RepoId}' on {options.Endpoint} (and no local folder of that name); if it is private, {tokenHint}");
        if (status == HttpStatusCode.NotFound || code == "EntryNotFound")
            return file is null
                ? Fail(HubErrorKind.NotFound, $"no model '{id.RepoId}' with revision '{id.Revision}' on {options.Endpoint} (HTTP 404 from {url})")
                : Fail(HubErrorKind.NotFound, $"model {id} has no file '{file}' ({url})");
        if (status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            return Fail(HubErrorKind.Unauthorized, $"access to model {id.RepoId} was refused (HTTP {(int)status}): it is private or gated; {tokenHint}");
        return Fail(HubErrorKind.Unsupported, $"unexpected HTTP {(int)status} {response.ReasonPhrase} from {url}");
    }

    private RepoInfo ParseRepoInfo(JsonDocument document, Uri url)
    {
        using (document)
        {
            JsonElement root = document.RootElement;
            string? commit = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("sha", out JsonElement sha) && sha.ValueKind == JsonValueKind.String
                ? sha.GetString() : null;
            if (commit is null || !HubModelId.IsCommitHash(commit))
                throw new HubException(HubErrorKind.Unsupported, $"{url}: expected \"sha\" to be a 40-hex commit hash, got {(commit is null ? "none" : $"'{commit}'")}");
            if (!root.TryGetProperty("siblings", out JsonElement siblings) || siblings.ValueKind != JsonValueKind.Array)
                throw new HubException(HubErrorKind.Unsupported, $"{url}: expected an array \"siblings\" listing the repository's files");
            var files = new List<string>();
            foreach (JsonElement sibling in siblings.EnumerateArray())
                if (sibling.ValueKind == JsonValueKind.Object && sibling.TryGetProperty("rfilename", out JsonElement name) && name.GetString() is { } file)
                    files.Add(file);
            return new RepoInfo(commit, files);
        }
    }

    private Uri Url(string relative) => new($"{options.Endpoint.ToString().TrimEnd('/')}/{relative}");

    private bool IsEndpointHost(Uri url) =>
        Uri.Compare(url, options.Endpoint, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    private static bool IsRedirect(HttpStatusCode status) => (int)status is >= 300 and < 400;

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out IEnumerable<string>? values) ? values.FirstOrDefault() : null;

    // huggingface_hub strips the weak prefix and the quotes: the rest names the blob.
    private static string NormalizeEtag(string etag) =>
        (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');

    private static string Describe(Exception e) => e switch
    {
        OperationCanceledException => "the request timed out",
        HttpRequestException { InnerException: { } inner } http when !http.Message.Contains(inner.Message, StringComparison.Ordinal) =>
            $"{http.Message} ({inner.Message})",
        _ => e.Message,
    };

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex SafeEtag();
}

/// <summary>HTTP 429 or 5xx: the server may do better on another attempt.</summary>
internal sealed class TransientStatusException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode StatusCode { get; } = status;
}
