using System.Collections.Concurrent;
using Funnel.Inference.Hub;
using Spectre.Console;

namespace Funnel.Cli;

/// <summary>
/// Turns a <c>--model</c> value (a folder, or a Hub id such as <c>sentence-transformers/all-MiniLM-L6-v2[@rev]</c>)
/// into a local folder, drawing download progress on stderr so stdout stays clean for results.
/// Hub settings come from the environment (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE, HF_TOKEN).
/// </summary>
internal static class ModelFolders
{
    /// <summary>The folder for a <c>--model</c> value; downloads (with progress bars) only what the cache lacks.</summary>
    public static async Task<string> ResolveAsync(string model, CancellationToken ct)
    {
        using var resolver = new ModelResolver(HubOptions.FromEnvironment());
        if (resolver.TryResolveWithoutNetwork(model) is { } ready) return ready;
        return await FetchAsync(resolver, HubModelId.Parse(model), ct); // TryResolveWithoutNetwork returns null only for an id
    }

    /// <summary>The snapshot folder of a Hub model at the revision's latest commit, downloading what the cache lacks.</summary>
    public static async Task<string> DownloadAsync(HubModelId id, CancellationToken ct)
    {
        using var resolver = new ModelResolver(HubOptions.FromEnvironment() with { CheckForUpdates = true });
        return resolver.TryResolveWithoutNetwork(id.ToString()) ?? await FetchAsync(resolver, id, ct);
    }

    private static async Task<string> FetchAsync(ModelResolver resolver, HubModelId id, CancellationToken ct)
    {
        IAnsiConsole stderr = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (resolver.Options.Offline || !stderr.Profile.Capabilities.Interactive)
        {
            if (!resolver.Options.Offline) stderr.MarkupLineInterpolated($"[grey]downloading {id} into {resolver.Options.CacheDirectory}[/]");
            return await resolver.ResolveAsync(id, progress: null, ct);
        }
        return await stderr.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(context => resolver.ResolveAsync(id, new ProgressBars(context), ct));
    }

    /// <summary>One bar per file, created when its first report arrives (reports come from the download's thread).</summary>
    private sealed class ProgressBars(ProgressContext context) : IProgress<DownloadProgress>
    {
        private readonly ConcurrentDictionary<string, ProgressTask> _bars = new(StringComparer.Ordinal);

        public void Report(DownloadProgress value)
        {
            ProgressTask bar = _bars.GetOrAdd(value.File, file => context.AddTask(Markup.Escape(file), maxValue: Math.Max(1, value.TotalBytes)));
            bar.Value = value.IsComplete ? bar.MaxValue : value.BytesDone;
        }
    }
}
