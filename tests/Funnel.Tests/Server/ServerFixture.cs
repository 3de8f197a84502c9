using System.Net.Http.Headers;
using Funnel.Inference;
using Funnel.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Funnel.Tests.Server;

/// <summary>Small random-weight bi- and cross-encoders (SeededCheckpoint), generated once per test run.</summary>
public sealed class SmallModels : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"funnel-server-tests-{Guid.NewGuid():N}");

    public SmallModels()
    {
        BiEncoderFolder = Path.Combine(_root, "bi");
        CrossEncoderFolder = Path.Combine(_root, "cross");
        SeededCheckpoint.Write(BiEncoderFolder, TestPaths.SharedModel("all-MiniLM-L6-v2"), seed: 7,
            new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small });
        SeededCheckpoint.Write(CrossEncoderFolder, TestPaths.SharedModel("ms-marco-MiniLM-L-6-v2"), seed: 11,
            new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small, CrossEncoder = true });
        BiEncoder = SentenceEncoder.Load(BiEncoderFolder);
        CrossEncoder = CrossEncoder.Load(CrossEncoderFolder);
    }

    public string BiEncoderFolder { get; }
    public string CrossEncoderFolder { get; }

    public SentenceEncoder BiEncoder { get; }
    public CrossEncoder CrossEncoder { get; }

    public ServerModels Both => new(BiEncoder, "test/bi-small", CrossEncoder, "test/cross-small");

    public void Dispose()
    {
        BiEncoder.Dispose();
        CrossEncoder.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<SmallModels>
{
    public const string Name = "server";
}

/// <summary>A Funnel server started on a free loopback port, with a client pointed at it.</summary>
public sealed class RunningServer : IAsyncDisposable
{
    private RunningServer(WebApplication app, Uri address)
    {
        App = app;
        Address = address;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
    }

    public WebApplication App { get; }
    public Uri Address { get; }
    public HttpClient Client { get; }

    public static async Task<RunningServer> StartAsync(ServerModels models, ServerOptions? options = null)
    {
        options ??= new ServerOptions();
        WebApplication app = FunnelServer.Build(options with { JsonLogs = false }, models, builder =>
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
        });
        await app.StartAsync();
        string address = FunnelServer.BoundAddresses(app).Single();
        var server = new RunningServer(app, new Uri(address));
        if (options.ApiKey is { } key) server.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
