using Funnel.Inference.Packaged;

namespace Funnel.Tests.Packaged;

public sealed class PackagedModelOptionsTests
{
    private static readonly string Home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static Func<string, string?> Variables(params (string Name, string Value)[] set) =>
        name => set.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Models_go_to_FUNNEL_HOME_else_the_XDG_cache_else_the_home_cache()
    {
        Assert.Equal(Path.Combine(Home, ".cache", "funnel", "models"), PackagedModelOptions.FromEnvironment(Variables()).ModelsDirectory);
        Assert.Equal("/x/funnel/models", PackagedModelOptions.FromEnvironment(Variables(("XDG_CACHE_HOME", "/x"))).ModelsDirectory);
        Assert.Equal("/f/models", PackagedModelOptions.FromEnvironment(Variables(("XDG_CACHE_HOME", "/x"), ("FUNNEL_HOME", "/f"))).ModelsDirectory);
        Assert.Equal(Path.Combine(Home, "fh", "models"), PackagedModelOptions.FromEnvironment(Variables(("FUNNEL_HOME", "~/fh"))).ModelsDirectory);
        Assert.Equal(Path.Combine(Home, ".cache", "funnel"), FunnelHome.Resolve(Variables(("FUNNEL_HOME", ""))));
    }

    [Fact]
    public void Packages_are_looked_for_in_NUGET_PACKAGES_then_the_restore_root_then_the_user_folder()
    {
        string restored = Path.TrimEndingDirectorySeparator(PackagedModelOptions.RestoredPackageRoot!);
        string user = Path.Combine(Home, ".nuget", "packages");

        IReadOnlyList<string> set = PackagedModelOptions.FromEnvironment(Variables(("NUGET_PACKAGES", "/np/"))).PackageFolders;
        IReadOnlyList<string> unset = PackagedModelOptions.FromEnvironment(Variables()).PackageFolders;

        Assert.Equal(["/np", .. new[] { restored, user }.Distinct()], set);
        Assert.Equal(new[] { restored, user }.Distinct(), unset);
        // This build's restore put the packages there: the recorded root holds them.
        Assert.All(PackagedModels.All, m => Assert.StartsWith(restored, new PackagedModelStore(new PackagedModelOptions
        {
            ModelsDirectory = "/unused", PackageFolders = [restored],
        }).LocatePackage(m), StringComparison.Ordinal));
    }
}
