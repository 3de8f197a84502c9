using Funnel.Inference.Packaged;
using Funnel.Tests.Cli;

namespace Funnel.Tests.Quality;

/// <summary>
/// A fresh machine for the quality gates (its own FUNNEL_HOME, offline Hugging Face cache) and the NFCorpus collections of
/// the packaged bi-encoders, each built once per test run by <c>funnel index</c> the first time a test asks for it. Building
/// one embeds the whole corpus (minutes on two cores), so every test that needs a collection shares it.
/// </summary>
public sealed class NfCorpusCollections : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-quality-").FullName;
    private readonly Dictionary<string, Lazy<Task<string>>> _collections;

    public NfCorpusCollections()
    {
        _collections = PackagedModels.All.ToDictionary(m => m.Id, m => new Lazy<Task<string>>(() => BuildAsync(m.Id)));
        Machine = new Dictionary<string, string?>
        {
            ["FUNNEL_HOME"] = Path.Combine(_temp, "home"), ["HF_HOME"] = Path.Combine(_temp, "hf"), ["HF_HUB_OFFLINE"] = "1",
        };
    }

    public static string NfCorpus => Path.Combine(TestPaths.SharedDataset("beir-nfcorpus"), "nfcorpus.zip");

    /// <summary>The environment of every <c>funnel</c> run: packaged models are written into this machine's FUNNEL_HOME.</summary>
    public IReadOnlyDictionary<string, string?> Machine { get; }

    /// <summary>Long enough for a loaded two-core machine to embed NFCorpus; a hang still fails.</summary>
    public static TimeSpan Timeout { get; } = TimeSpan.FromMinutes(20);

    /// <summary>Runs <c>funnel ARGS</c> on this machine; a failure shows its stderr.</summary>
    public async Task<string> RunAsync(params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(Machine, Timeout, args);
        Assert.True(code == 0, $"funnel {string.Join(' ', args)} exited with {code}: {stderr}");
        return stdout;
    }

    /// <summary>A path in this machine's temporary folder (deleted with it).</summary>
    public string TempFile(string name) => Path.Combine(_temp, name);

    /// <summary>The folder of the NFCorpus collection with default settings for the packaged model <paramref name="modelId"/>.</summary>
    public Task<string> CollectionAsync(string modelId) => _collections[modelId].Value;

    private async Task<string> BuildAsync(string modelId)
    {
        string folder = Path.Combine(_temp, modelId.Replace('/', '_'));
        // The default bi-encoder is what a new collection gets when none is named: test that path for it.
        string[] model = modelId == PackagedModels.DefaultBiEncoder.Id ? [] : ["--bi-encoder", modelId];
        string stdout = await RunAsync(["index", "--collection", folder, "--input", NfCorpus, .. model]);
        Assert.Contains("3,633 documents read, 3,633 written", stdout);
        return folder;
    }

    public void Dispose() => Directory.Delete(_temp, recursive: true);
}
