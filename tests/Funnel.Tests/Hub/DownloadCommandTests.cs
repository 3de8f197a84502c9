using System.CommandLine;
using System.Text;
using Funnel.Cli;
using Funnel.Inference.Packaged;
using Funnel.Tests.Cli;

namespace Funnel.Tests.Hub;

/// <summary>funnel download: argument mistakes are one clear line and exit code 2, before any network use; a packaged id is fetched from the Hub.</summary>
public sealed class DownloadCommandTests
{
    [Fact]
    public async Task Downloading_a_packaged_id_fetches_the_Hub_copy()
    {
        await using FakeHub hub = await FakeHub.StartAsync();
        string commit = hub.AddRepo("sentence-transformers/all-MiniLM-L6-v2").Commit(new Dictionary<string, FakeFile>
        {
            ["config.json"] = new(Encoding.UTF8.GetBytes("{\"model_type\": \"bert\"}"), Lfs: false),
            ["vocab.txt"] = new(Encoding.UTF8.GetBytes("[PAD]\n[UNK]\n"), Lfs: false),
            ["model.safetensors"] = new(new byte[5000], Lfs: true),
        });
        string root = Directory.CreateTempSubdirectory("funnel-download-").FullName;
        try
        {
            // The packaged copy is ready, so only the command's meaning can send it to the Hub.
            await new PackagedModelStore(PackagedModelOptions.FromEnvironment() with { ModelsDirectory = Path.Combine(root, "funnel", "models") })
                .MaterializeAsync(PackagedModels.AllMiniLmL6V2);

            var (code, stdout, stderr) = await CliProcess.RunAsync(new Dictionary<string, string?>
            {
                ["HF_ENDPOINT"] = hub.Endpoint.ToString(), ["HF_HOME"] = Path.Combine(root, "hf"), ["FUNNEL_HOME"] = Path.Combine(root, "funnel"),
                ["HF_HUB_OFFLINE"] = null, ["HF_TOKEN"] = null,
            }, TimeSpan.FromMinutes(1), "download", "sentence-transformers/all-MiniLM-L6-v2");

            Assert.True(code == 0, stderr);
            Assert.Equal(Path.Combine(root, "hf", "hub", "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", commit), stdout.Trim());
            Assert.Contains(hub.CdnRequests, r => r.Method == "GET");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Theory]
    [InlineData("error: 'all-MiniLM-L6-v2' is not a Hub model id: expected org/name", "download", "all-MiniLM-L6-v2")]
    [InlineData("error: give the revision once: either 'org/name@v1' or --revision v2", "download", "org/name@v1", "--revision", "v2")]
    [InlineData("error: 'a b' is not a valid revision", "download", "org/name", "--revision", "a b")]
    public void Malformed_arguments_are_usage_errors(string expected, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();

        int code = Program.Run(args, new InvocationConfiguration { Output = output, Error = error });

        Assert.Equal(2, code);
        Assert.StartsWith(expected, error.ToString(), StringComparison.Ordinal);
        Assert.Equal("", output.ToString());
    }
}
