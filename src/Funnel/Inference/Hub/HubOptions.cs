namespace Funnel.Inference.Hub;

/// <summary>
/// Where and how <see cref="ModelResolver"/> talks to a Hugging Face Hub. <see cref="FromEnvironment"/> reads the
/// same variables as <c>huggingface_hub</c>, so the cache is shared with Python tools.
/// </summary>
public sealed record HubOptions
{
    public static readonly Uri DefaultEndpoint = new("https://huggingface.co");

    /// <summary>The Hub base URL (<c>HF_ENDPOINT</c>); a mirror may carry a path prefix.</summary>
    public Uri Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>The hub cache folder holding <c>models--org--name</c> (<c>HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>).</summary>
    public required string CacheDirectory { get; init; }

    /// <summary>Use the cache only, never the network (<c>HF_HUB_OFFLINE=1</c>).</summary>
    public bool Offline { get; init; }

    /// <summary>Bearer token for private or gated models (<c>HF_TOKEN</c>, else the token file of <c>huggingface-cli login</c>).</summary>
    public string? Token { get; init; }

    /// <summary>
    /// The client to use; it must be created with <c>AllowAutoRedirect = false</c>, because the Hub's file metadata
    /// (<c>X-Repo-Commit</c>, <c>X-Linked-Etag</c>, <c>X-Linked-Size</c>) is on the redirect response itself.
    /// Null: the resolver creates (and disposes) its own.
    /// </summary>
    public HttpClient? HttpClient { get; init; }

    /// <summary>
    /// Look a branch or tag up on the Hub even when the cache has a complete snapshot for it (one request), so a
    /// moved branch is followed, as huggingface_hub does. Off: a complete cached model is used without any request.
    /// Commit hashes never move and are never looked up again.
    /// </summary>
    public bool CheckForUpdates { get; init; }

    /// <summary>Consecutive failed attempts (with no bytes gained) before a request is given up.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Delay before the first retry; doubled on each further one, capped at 30 s.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(0.5);

    /// <summary>A download that receives no byte for this long is treated as a dropped connection and resumed.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Options from the environment: <c>HF_ENDPOINT</c>, <c>HF_HOME</c> (default <c>$XDG_CACHE_HOME/huggingface</c>,
    /// else <c>~/.cache/huggingface</c>), <c>HF_HUB_CACHE</c>, <c>HF_HUB_OFFLINE</c>, <c>HF_TOKEN</c>
    /// (else the file <c>HF_TOKEN_PATH</c> or <c>$HF_HOME/token</c>).
    /// </summary>
    /// <param name="variable">Reads one variable; tests inject values here. Default: the process environment.</param>
    public static HubOptions FromEnvironment(Func<string, string?>? variable = null)
    {
        variable ??= Environment.GetEnvironmentVariable;
        string? Read(string name) => variable(name) is { Length: > 0 } value ? value : null;

        string home = UserPaths.ExpandHome(Read("HF_HOME"))
            ?? Path.Combine(UserPaths.ExpandHome(Read("XDG_CACHE_HOME")) ?? Path.Combine(UserPaths.Home(), ".cache"), "huggingface");
        return new HubOptions
        {
            Endpoint = ParseEndpoint(Read("HF_ENDPOINT")),
            CacheDirectory = UserPaths.ExpandHome(Read("HF_HUB_CACHE")) ?? Path.Combine(home, "hub"),
            Offline = IsTrue(Read("HF_HUB_OFFLINE")),
            Token = Read("HF_TOKEN") ?? ReadTokenFile(UserPaths.ExpandHome(Read("HF_TOKEN_PATH")) ?? Path.Combine(home, "token")),
        };
    }

    private static Uri ParseEndpoint(string? value)
    {
        if (value is null) return DefaultEndpoint;
        if (Uri.TryCreate(value.TrimEnd('/'), UriKind.Absolute, out Uri? uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp))
            return uri;
        throw new HubException(HubErrorKind.InvalidArgument, $"HF_ENDPOINT '{value}' is not an absolute http(s) URL such as https://huggingface.co");
    }

    // Same spellings huggingface_hub accepts for its boolean variables.
    private static bool IsTrue(string? value) =>
        value is not null && (value.Equals("1", StringComparison.Ordinal) || value.Equals("true", StringComparison.OrdinalIgnoreCase)
            || value.Equals("yes", StringComparison.OrdinalIgnoreCase) || value.Equals("on", StringComparison.OrdinalIgnoreCase));

    private static string? ReadTokenFile(string path) =>
        File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } token ? token : null;
}
