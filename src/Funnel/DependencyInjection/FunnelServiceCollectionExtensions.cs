using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Retrieval;
using Funnel.Retrieval.VectorData;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.VectorData;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>What <see cref="FunnelServiceCollectionExtensions.AddFunnel"/> registers.</summary>
public sealed class FunnelOptions
{
    /// <summary>The bi-encoder: a packaged or Hub id, or a model folder (default: all-MiniLM-L6-v2, from its NuGet package).</summary>
    public string BiEncoder { get; set; } = PackagedModels.DefaultBiEncoder.Id;

    /// <summary>The cross-encoder registered as <see cref="IReranker"/> (null: none): a Hub id or a model folder.</summary>
    public string? CrossEncoder { get; set; }

    /// <summary>Run-time settings for both models (precision, threads, batch size).</summary>
    public EncoderOptions? Encoder { get; set; }

    /// <summary>A folder of collections registered as the <see cref="VectorStore"/> (null: no store).</summary>
    public string? CollectionsFolder { get; set; }

    public FunnelVectorStoreOptions VectorStore { get; set; } = new();

    /// <summary>The collection of <see cref="CollectionsFolder"/> the registered <see cref="SearchPipeline"/> searches
    /// (created if missing; null: no pipeline is registered).</summary>
    public string? SearchCollection { get; set; }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(BiEncoder)) throw new ArgumentException("FunnelOptions.BiEncoder: give a model id or folder");
        if (SearchCollection is not null && CollectionsFolder is null)
            throw new ArgumentException($"FunnelOptions.SearchCollection '{SearchCollection}' needs FunnelOptions.CollectionsFolder, the folder it lives in");
    }
}

public static class FunnelServiceCollectionExtensions
{
    /// <summary>
    /// Registers Funnel's models and store as singletons: <see cref="SentenceEncoder"/> and
    /// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> of string (the bi-encoder), <see cref="CrossEncoder"/> and
    /// <see cref="IReranker"/> when a cross-encoder is configured, <see cref="FunnelVectorStore"/> and <see cref="VectorStore"/>
    /// when a collections folder is, and a <see cref="SearchPipeline"/> over <see cref="FunnelOptions.SearchCollection"/>.
    /// Models load on first resolve (blocking; a Hub id not in the cache downloads then).
    /// <para>Registrations are tries: an <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> registered before (e.g. with
    /// Microsoft.Extensions.AI's <c>AddEmbeddingGenerator(sp =&gt; sp.GetRequiredService&lt;SentenceEncoder&gt;()).UseLogging()</c>)
    /// is kept, and the store and pipeline embed queries through it; the fingerprint and chunking checks see the encoder
    /// through its <c>GetService</c>.</para>
    /// </summary>
    public static IServiceCollection AddFunnel(this IServiceCollection services, Action<FunnelOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new FunnelOptions();
        configure?.Invoke(options);
        options.Validate();

        services.TryAddSingleton(_ => SentenceEncoder.FromPretrainedAsync(options.BiEncoder, options.Encoder).GetAwaiter().GetResult());
        services.TryAddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(sp => sp.GetRequiredService<SentenceEncoder>());
        if (options.CrossEncoder is { } crossEncoder)
        {
            services.TryAddSingleton(_ => CrossEncoder.FromPretrainedAsync(crossEncoder, options.Encoder).GetAwaiter().GetResult());
            services.TryAddSingleton<IReranker>(sp => sp.GetRequiredService<CrossEncoder>());
        }
        if (options.CollectionsFolder is { } folder)
        {
            services.TryAddSingleton(sp => new FunnelVectorStore(folder, sp.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>(), options.VectorStore));
            services.TryAddSingleton<VectorStore>(sp => sp.GetRequiredService<FunnelVectorStore>());
            if (options.SearchCollection is { } name)
                services.TryAddSingleton(sp => new SearchPipeline(sp.GetRequiredService<FunnelVectorStore>().OpenCollection(name),
                    sp.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>(), sp.GetService<IReranker>()));
        }
        return services;
    }
}
