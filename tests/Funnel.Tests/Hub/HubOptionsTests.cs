using Funnel.Inference.Hub;

namespace Funnel.Tests.Hub;

public sealed class HubOptionsTests
{
    private static readonly string Home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    [Fact]
    public void Defaults_match_huggingface_hub()
    {
        HubOptions options = HubOptions.FromEnvironment(Variables());

        Assert.Equal(new Uri("https://huggingface.co"), options.Endpoint);
        Assert.Equal(Path.Combine(Home, ".cache", "huggingface", "hub"), options.CacheDirectory);
        Assert.False(options.Offline);
        Assert.Null(options.HttpClient);
    }

    [Fact]
    public void HF_HUB_CACHE_wins_over_HF_HOME_which_wins_over_XDG_CACHE_HOME()
    {
        Assert.Equal("/x/huggingface/hub", HubOptions.FromEnvironment(Variables(("XDG_CACHE_HOME", "/x"))).CacheDirectory);
        Assert.Equal("/h/hub", HubOptions.FromEnvironment(Variables(("XDG_CACHE_HOME", "/x"), ("HF_HOME", "/h"))).CacheDirectory);
        Assert.Equal("/c", HubOptions.FromEnvironment(Variables(("HF_HOME", "/h"), ("HF_HUB_CACHE", "/c"))).CacheDirectory);
        Assert.Equal(Path.Combine(Home, "hf", "hub"), HubOptions.FromEnvironment(Variables(("HF_HOME", "~/hf"))).CacheDirectory);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("TRUE", true)]
    [InlineData("yes", true)]
    [InlineData("On", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData("", false)]
    public void HF_HUB_OFFLINE_accepts_the_usual_spellings(string value, bool offline) =>
        Assert.Equal(offline, HubOptions.FromEnvironment(Variables(("HF_HUB_OFFLINE", value))).Offline);

    [Fact]
    public void HF_ENDPOINT_is_used_and_checked()
    {
        Assert.Equal(new Uri("https://hf-mirror.example/prefix"), HubOptions.FromEnvironment(Variables(("HF_ENDPOINT", "https://hf-mirror.example/prefix/"))).Endpoint);

        var error = Assert.Throws<HubException>(() => HubOptions.FromEnvironment(Variables(("HF_ENDPOINT", "huggingface.co"))));
        Assert.Contains("HF_ENDPOINT 'huggingface.co'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Token_comes_from_HF_TOKEN_else_from_the_login_token_file()
    {
        string home = Path.Combine(Path.GetTempPath(), "funnel-hf-home-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(home);
        try
        {
            Assert.Null(HubOptions.FromEnvironment(Variables(("HF_HOME", home))).Token);
            File.WriteAllText(Path.Combine(home, "token"), "hf_from_file\n");
            Assert.Equal("hf_from_file", HubOptions.FromEnvironment(Variables(("HF_HOME", home))).Token);
            Assert.Equal("hf_from_env", HubOptions.FromEnvironment(Variables(("HF_HOME", home), ("HF_TOKEN", "hf_from_env"))).Token);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    [Theory]
    [InlineData("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "main")]
    [InlineData("BAAI/bge-small-en-v1.5@v1.0", "BAAI/bge-small-en-v1.5", "v1.0")]
    [InlineData("org/name@refs/pr/1", "org/name", "refs/pr/1")]
    public void Model_ids_parse_with_an_optional_revision(string text, string repo, string revision)
    {
        Assert.True(HubModelId.TryParse(text, out HubModelId? id));
        Assert.Equal((repo, revision), (id.RepoId, id.Revision));
        Assert.Equal("models--" + repo.Replace("/", "--", StringComparison.Ordinal), id.CacheFolderName);
    }

    [Theory]
    [InlineData("all-MiniLM-L6-v2")]
    [InlineData("a/b/c")]
    [InlineData("org/na--me")]
    [InlineData("org/../name")]
    [InlineData("org/name@")]
    [InlineData("org/name@../../etc")]
    [InlineData("org/name@main branch")]
    [InlineData("/abs/path")]
    public void Malformed_ids_are_refused(string text) => Assert.False(HubModelId.TryParse(text, out _));

    private static Func<string, string?> Variables(params (string Name, string Value)[] values) =>
        name => values.Where(v => v.Name == name).Select(v => v.Value).LastOrDefault()
            // Keep this machine's own login token out of tests that do not set HF_HOME.
            ?? (name == "HF_TOKEN_PATH" && values.All(v => v.Name != "HF_HOME") ? "/nonexistent/token" : null);
}
