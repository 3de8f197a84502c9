using System.Reflection;

namespace Funnel.Inference.Packaged;

/// <summary>Where packaged models are looked for (NuGet package folders) and materialized (a Funnel cache folder).</summary>
public sealed record PackagedModelOptions
{
    /// <summary>Materialized model folders go to <c>{ModelsDirectory}/{org}/{name}/</c>.</summary>
    public required string ModelsDirectory { get; init; }

    /// <summary>NuGet global packages folders to look in, in order (each holds <c>{id}/{version}/</c>, lower-case).</summary>
    public required IReadOnlyList<string> PackageFolders { get; init; }

    /// <summary>
    /// Models in <c>$FUNNEL_HOME/models</c> (see <see cref="FunnelHome"/>); packages in <c>$NUGET_PACKAGES</c>, then the folder
    /// the restore of this build used (recorded in the assembly), then <c>~/.nuget/packages</c>.
    /// </summary>
    /// <param name="variable">Reads one environment variable; tests inject values here. Default: the process environment.</param>
    public static PackagedModelOptions FromEnvironment(Func<string, string?>? variable = null)
    {
        variable ??= Environment.GetEnvironmentVariable;
        string?[] candidates =
        [
            UserPaths.ExpandHome(variable("NUGET_PACKAGES") is { Length: > 0 } set ? set : null),
            RestoredPackageRoot,
            Path.Combine(UserPaths.Home(), ".nuget", "packages"),
        ];
        return new PackagedModelOptions
        {
            ModelsDirectory = Path.Combine(FunnelHome.Resolve(variable), "models"),
            PackageFolders = [.. candidates.OfType<string>().Select(p => Path.TrimEndingDirectorySeparator(Path.GetFullPath(p))).Distinct(StringComparer.Ordinal)],
        };
    }

    /// <summary>$(NuGetPackageRoot) of the restore that built Funnel (src/Funnel/Funnel.csproj records it).</summary>
    internal static string? RestoredPackageRoot =>
        typeof(PackagedModelOptions).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "Funnel.NuGetPackageRoot")?.Value is { Length: > 0 } root ? root : null;
}
