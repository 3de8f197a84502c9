using System.CommandLine;
using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Retrieval;
using Spectre.Console;

namespace Funnel.Cli.Commands;

/// <summary>What the collection commands (index, search, reindex, delete) share: options, model loading and progress display.</summary>
internal static class CollectionCommandLine
{
    public static Option<string> CollectionOption() => new("--collection", "-c")
    {
        Description = "The collection folder.",
        Required = true,
    };

    public static Option<string?> BiEncoderOption(string description) => new("--bi-encoder")
    {
        Description = description,
    };

    public static Option<int> BatchSizeOption() => new("--batch-size")
    {
        Description = "Documents per durable batch (a crash loses at most one batch).",
        DefaultValueFactory = _ => new IndexingOptions().BatchSize,
    };

    public static Option<double> RerankWeightOption() => new("--rerank-weight")
    {
        Description = "With --rerank: how much the cross-encoder decides the order, 0–1. 1: its order; below 1, its ranking (weight w) and the first stage's (1 − w) fused by reciprocal rank.",
        DefaultValueFactory = _ => new SearchOptions().RerankWeight,
    };

    /// <summary>
    /// The <see cref="RerankWeightOption"/>'s value, checked: a usage error names the option, and a weight
    /// given without <paramref name="rerank"/>'s cross-encoder is refused rather than silently ignored.
    /// </summary>
    public static double RerankWeight(ParseResult parse, Option<double> option, Option<string?> rerank)
    {
        double weight = parse.GetValue(option);
        if (!(weight is >= 0 and <= 1)) throw new UsageException($"--rerank-weight must be between 0 and 1 (got {weight.ToString(System.Globalization.CultureInfo.InvariantCulture)})");
        if (weight != 1 && parse.GetValue(rerank) is null)
            throw new UsageException("--rerank-weight blends a cross-encoder's order with the first stage's: give the cross-encoder with --rerank");
        return weight;
    }

    /// <summary><c>--precision</c> of the collection commands, whose default is the collection's own.</summary>
    public static Option<string?> PrecisionOption() => ModelOption.Precision("the collection's; fp32 for a new collection");

    /// <summary>
    /// Loads the bi-encoder <paramref name="model"/> (folder, packaged id or Hub id), else the one the collection's manifest
    /// records, else (a new collection) the packaged default; in <paramref name="precision"/>, else the precision the
    /// collection's vectors were made in, else fp32.
    /// </summary>
    public static async Task<SentenceEncoder> LoadBiEncoderAsync(ParseResult parse, string? model, CollectionManifest? manifest, CancellationToken ct,
        string? precision = null)
    {
        string source = model ?? manifest?.BiEncoder.Reference ?? PackagedModels.DefaultBiEncoder.Id;
        var options = new EncoderOptions
        {
            Precision = ModelOption.ParsePrecision(precision) ?? manifest?.BiEncoder.Precision ?? InferencePrecision.Fp32,
        };
        return SentenceEncoder.Load(await ModelOption.ResolveAsync(parse, source, "bi-encoder", ct), options);
    }

    /// <summary>
    /// Renders indexing progress on <paramref name="error"/>: a Spectre.Console bar on an interactive terminal, else one plain
    /// line per batch (so logs, and tests that watch a child process, can follow it).
    /// </summary>
    public static async Task<T> WithProgressAsync<T>(TextWriter error, string title, long? total, Func<IProgress<IndexingProgress>, Task<T>> run)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(error) });
        if (!ReferenceEquals(error, Console.Error) || Console.IsErrorRedirected || !console.Profile.Capabilities.Interactive)
            return await run(new Callback(p => error.WriteLine($"{title}: {Describe(p)}")));
        return await console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                ProgressTask task = context.AddTask(title, maxValue: total ?? 1);
                task.IsIndeterminate = total is null;
                return await run(new Callback(p =>
                {
                    task.Value = Math.Min(p.DocumentsRead, task.MaxValue);
                    task.Description = $"{title}: {p.DocumentsRead:N0} docs ({p.DocumentsUnchanged:N0} unchanged), {p.Chunks:N0} chunks, {p.DocumentsPerSecond:N1} docs/s";
                }));
            });
    }

    public static string Describe(IndexingProgress p) =>
        $"{p.DocumentsRead:N0} documents read, {p.DocumentsWritten:N0} written, {p.DocumentsUnchanged:N0} unchanged, {p.Chunks:N0} chunks in {p.Elapsed.TotalSeconds:N1} s ({p.DocumentsPerSecond:N1} docs/s)";

    private sealed class Callback(Action<IndexingProgress> report) : IProgress<IndexingProgress>
    {
        public void Report(IndexingProgress value) => report(value);
    }

}
