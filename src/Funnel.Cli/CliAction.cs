using System.CommandLine;

namespace Funnel.Cli;

/// <summary>Runs a command body, turning failures into one clear line on stderr and an exit code (<see cref="ExitCode"/>)
/// instead of a stack trace.</summary>
internal static class CliAction
{
    public const int UsageError = 2;

    /// <summary>Something that should have worked failed (the system refused, the hub could not be reached, training diverged).</summary>
    public const int Failed = 1;

    public const int Cancelled = 130;

    public static async Task<int> RunAsync(ParseResult parse, Func<TextWriter, Task<int>> body)
    {
        TextWriter error = parse.InvocationConfiguration.Error;
        try
        {
            return await body(parse.InvocationConfiguration.Output);
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled");
            return Cancelled;
        }
        catch (Exception ex) when (KindOf(ex) is { } kind)
        {
            error.WriteLine($"error: {Describe(ex)}");
            return ExitCode(kind);
        }
    }

    /// <summary>
    /// The exit code of each kind of failure, the one place the CLI decides it: 2 when the user's input or the state of their
    /// files must change (README's usage error), 1 when something that should have worked failed and retrying may help.
    /// </summary>
    public static int ExitCode(FunnelErrorKind kind) => kind switch
    {
        FunnelErrorKind.InvalidInput or FunnelErrorKind.TooLarge or FunnelErrorKind.NotFound or FunnelErrorKind.Conflict or FunnelErrorKind.Corrupt
            or FunnelErrorKind.InvalidModelOutput or FunnelErrorKind.Unsupported => UsageError,
        FunnelErrorKind.Diverged or FunnelErrorKind.Overloaded or FunnelErrorKind.DeadlineUnmet or FunnelErrorKind.Unavailable
            or FunnelErrorKind.Unauthorized => Failed,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "no exit code for this kind of failure"),
    };

    /// <summary>
    /// The kind of a failure: Funnel's exceptions say it; the framework's exceptions the library throws for a bad argument or
    /// file are classified here; null for anything else (a bug, which keeps its stack trace).
    /// </summary>
    internal static FunnelErrorKind? KindOf(Exception ex) => ex switch
    {
        FunnelException funnel => funnel.Kind,
        ArgumentException or FormatException => FunnelErrorKind.InvalidInput,
        FileNotFoundException or DirectoryNotFoundException => FunnelErrorKind.NotFound,
        InvalidDataException => FunnelErrorKind.Corrupt,
        NotSupportedException => FunnelErrorKind.Unsupported,
        // The system refused (disk full, no permission).
        IOException or UnauthorizedAccessException => FunnelErrorKind.Unavailable,
        _ => null,
    };

    /// <summary>Library options by the command-line option that sets them, so that a refused value names what the user typed.</summary>
    private static readonly Dictionary<string, string> OptionOf = new(StringComparer.Ordinal)
    {
        ["BatchSize"] = "--batch-size", ["MaxThreads"] = "--threads", ["MaxSequenceLength"] = "--max-length",
        ["MaxTokens"] = "--chunk-size", ["OverlapTokens"] = "--chunk-overlap", ["Shards"] = "--shards",
    };

    /// <summary>The message of a refused input; an <see cref="ArgumentException"/> about a library option names the CLI option
    /// instead of the property, without .NET's "(Parameter …)" and "Actual value was …" suffixes.</summary>
    private static string Describe(Exception ex)
    {
        if (ex is not ArgumentException { ParamName: { } name } argument) return ex.Message;
        string message = argument.Message;
        int cut = message.IndexOf($" (Parameter '{name}')", StringComparison.Ordinal);
        if (cut >= 0) message = message[..cut];
        if (!OptionOf.TryGetValue(name, out string? option)) return message;
        string actual = ex is ArgumentOutOfRangeException { ActualValue: { } value } ? $" (got {value})" : "";
        if (!message.Contains("(got ", StringComparison.Ordinal)) message += actual;
        return message.Contains(name, StringComparison.Ordinal) ? message.Replace(name, option, StringComparison.Ordinal) : $"{option}: {message}";
    }

    public static int Run(ParseResult parse, Func<TextWriter, int> body)
        => RunAsync(parse, output => Task.FromResult(body(output))).GetAwaiter().GetResult();
}
