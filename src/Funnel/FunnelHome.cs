namespace Funnel;

/// <summary>
/// Funnel's own data folder: packaged models materialized as model folders (<c>models/</c>) and evaluation collections
/// (<c>eval/</c>). <c>$FUNNEL_HOME</c>, else <c>$XDG_CACHE_HOME/funnel</c>, else <c>~/.cache/funnel</c>. Everything in it can be
/// re-created, so it is a cache, kept apart from the Hugging Face cache that Python tools share.
/// </summary>
public static class FunnelHome
{
    /// <param name="variable">Reads one environment variable; tests inject values here. Default: the process environment.</param>
    public static string Resolve(Func<string, string?>? variable = null)
    {
        variable ??= Environment.GetEnvironmentVariable;
        return UserPaths.ExpandHome(NonEmpty(variable("FUNNEL_HOME")))
               ?? Path.Combine(UserPaths.ExpandHome(NonEmpty(variable("XDG_CACHE_HOME"))) ?? Path.Combine(UserPaths.Home(), ".cache"), "funnel");
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}

/// <summary>The user's home folder, and <c>~</c> in paths read from the environment.</summary>
internal static class UserPaths
{
    public static string Home() => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    public static string? ExpandHome(string? path) =>
        path is not null && (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
            ? Path.Combine(Home(), path.Length > 2 ? path[2..] : "")
            : path;
}
