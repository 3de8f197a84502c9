namespace Funnel.Tests;

/// <summary>Where the tests find the repository, its committed fixtures and the shared assets.</summary>
internal static class TestPaths
{
    /// <summary>The repository root: the first folder above the test binaries holding Funnel.slnx.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Committed fixtures, copied beside the test binaries.</summary>
    public static string Fixtures { get; } = Path.Combine(AppContext.BaseDirectory, "Fixtures");

    /// <summary>The shared assets folder: $FUNNEL_SHARED, else ../shared beside the repository.</summary>
    public static string Shared { get; } = Environment.GetEnvironmentVariable("FUNNEL_SHARED") is { Length: > 0 } s
        ? s
        : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string SharedModel(string name) => Path.Combine(Shared, "models", name);

    public static string SharedDataset(string name) => Path.Combine(Shared, "datasets", name);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Funnel.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no Funnel.slnx above {AppContext.BaseDirectory}");
    }
}
