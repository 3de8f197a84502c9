using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Retrieval;
using Funnel.Retrieval.VectorData;
using Funnel.Tests.Packaged;
using Funnel.Tests.Retrieval;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.VectorData;

namespace Funnel.Tests.Hosting;

/// <summary><c>services.AddFunnel(…)</c> with Microsoft.Extensions.AI's middleware around the bi-encoder, on the real all-MiniLM-L6-v2.</summary>
public sealed class AddFunnelTests(MaterializedModels packaged, SmallModels small) : IClassFixture<MaterializedModels>, IClassFixture<SmallModels>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("funnel-di-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public sealed class Note
    {
        [VectorStoreKey] public string Id { get; set; } = "";
        [VectorStoreData(IsFullTextIndexed = true)] public string Text { get; set; } = "";
        [VectorStoreVector(384)] public string Embedding => Text;
    }

    [Fact]
    public async Task AServiceCollectionResolvesEverythingAndEmbedsThroughMiddleware()
    {
        Assert.Equal("sentence-transformers/all-MiniLM-L6-v2", new FunnelOptions().BiEncoder);
        Assert.Equal(PackagedModels.DefaultBiEncoder.Id, new FunnelOptions().BiEncoder);

        var logs = new LogLines();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddEmbeddingGenerator(sp => sp.GetRequiredService<SentenceEncoder>()).UseLogging().UseOpenTelemetry();
        services.AddFunnel(o =>
        {
            o.BiEncoder = packaged.MiniLm; // the packaged copy, materialized into the fixture's folder rather than ~/.funnel
            o.CrossEncoder = small.CrossEncoderPath;
            o.CollectionsFolder = _folder;
            o.SearchCollection = "notes";
        });
        await using ServiceProvider provider = services.BuildServiceProvider();

        var generator = provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        Assert.IsNotType<SentenceEncoder>(generator); // the middleware registered first is kept
        SentenceEncoder encoder = provider.GetRequiredService<SentenceEncoder>();
        Assert.Same(encoder, generator.GetService<SentenceEncoder>());
        Embedding<float> embedding = await generator.GenerateAsync("This is an example sentence");
        float[] published = [0.06765693f, 0.06349593f, 0.04871314f, 0.07930495f, 0.03744806f, 0.00265273f]; // the model card's
        for (int i = 0; i < published.Length; i++) Assert.Equal(published[i], embedding.Vector.Span[i], 1e-6f);
        Assert.Contains(logs.Lines, l => l.Contains("GenerateAsync", StringComparison.Ordinal));

        Assert.IsType<CrossEncoder>(provider.GetRequiredService<IReranker>());
        var store = Assert.IsType<FunnelVectorStore>(provider.GetRequiredService<VectorStore>());
        SearchPipeline pipeline = provider.GetRequiredService<SearchPipeline>();
        Assert.Same(provider.GetRequiredService<IReranker>(), pipeline.Reranker);

        var notes = store.GetCollection<string, Note>("notes");
        Assert.True(await notes.CollectionExistsAsync()); // the pipeline's collection was created
        await notes.UpsertAsync([
            new Note { Id = "cat", Text = "The cat sits on the mat." },
            new Note { Id = "markets", Text = "Stock markets fell sharply today." },
            new Note { Id = "kitten", Text = "A kitten is sleeping on a rug." },
        ]);
        int before = logs.Lines.Count;
        SearchResponse response = await pipeline.SearchAsync("where is the cat resting?", new SearchOptions { Retriever = Retriever.Dense, Rerank = false });
        Assert.Equal(["cat", "kitten", "markets"], response.Results.Select(r => r.DocumentId));
        Assert.True(logs.Lines.Count > before, "the pipeline embeds its query through the logging middleware");
        Assert.Equal(response.Results.Select(r => r.DocumentId), await notes.SearchAsync("where is the cat resting?", 3).Select(r => r.Record.Id).ToListAsync());
    }

    private sealed class LogLines : ILoggerProvider, ILogger
    {
        public List<string> Lines { get; } = [];
        public ILogger CreateLogger(string categoryName) => this;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines) Lines.Add(formatter(state, exception));
        }

        public void Dispose()
        {
        }
    }
}
