using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Funnel.Tests.Cli;

namespace Funnel.Tests.Server;

/// <summary><c>funnel serve</c> as a real child process: it serves, and SIGTERM drains accepted requests before exit.</summary>
[Collection(ServerCollection.Name)]
public sealed class ServeCommandTests(SmallModels models)
{
    private static Process StartCli(params string[] args) =>
        CliProcess.Start(new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1", ["FUNNEL_API_KEY"] = null }, args);

    [Fact]
    public async Task ServesAndDrainsOnSigterm()
    {
        using Process server = StartCli("serve", "--bi-encoder", models.BiEncoderFolder, "--cross-encoder", models.CrossEncoderFolder,
            "--urls", "http://127.0.0.1:0", "--max-wait-ms", "2000", "--api-key", "k");
        try
        {
            string address = await CliProcess.ListeningAddressAsync(server);
            Task<string> drainLogs = server.StandardOutput.ReadToEndAsync(); // a full pipe would block the server's logger
            using var client = new HttpClient { BaseAddress = new Uri(address) };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "k");

            Reply info = await client.GetReplyAsync("/info");
            Assert.Equal(HttpStatusCode.OK, info.Status);
            Assert.Equal("bi", info.Json.GetProperty("model_id").GetString());
            Assert.Equal("cross", info.Json.GetProperty("models").GetProperty("reranker").GetProperty("model_id").GetString());

            // Waits 2 s in the batcher for company: the server is told to stop meanwhile.
            Task<Reply> inFlight = client.PostAsync("/embed", new { inputs = "accepted before SIGTERM" });
            await Http.WaitForQueueDepthAsync(client, "bi", 1);
            using (Process kill = Process.Start("kill", $"-TERM {server.Id}")) await kill.WaitForExitAsync();

            Reply reply = await inFlight;
            Assert.Equal(HttpStatusCode.OK, reply.Status);
            float[] expected = models.BiEncoder.Encode("accepted before SIGTERM");
            float[] actual = Http.Floats(reply.Json[0]);
            for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-6f);

            await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, server.ExitCode);
            Assert.Contains("Application is shutting down", await drainLogs);
        }
        finally
        {
            if (!server.HasExited) server.Kill();
        }
    }

    [Theory]
    [InlineData("no-such-model-folder", "--bi-encoder", "./no-such-model-folder")]
    [InlineData("not an http:// URL", "--collections", "/tmp", "--urls", "https://127.0.0.1:8443")]
    public async Task BadArgumentsExitWith2AndOneClearLine(string mentions, params string[] args)
    {
        using Process cli = StartCli(["serve", .. args]);
        string stderr = await cli.StandardError.ReadToEndAsync();
        await cli.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, cli.ExitCode);
        Assert.Contains(mentions, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

}
