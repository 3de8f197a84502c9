using System.CommandLine;
using Funnel.Inference;
using Funnel.Inference.Hub;

namespace Funnel.Cli;

/// <summary>Runs a command body, turning the user's mistakes into one clear line on stderr and
/// exit code 2 instead of a stack trace.</summary>
internal static class CliAction
{
    public const int UsageError = 2;

    public static async Task<int> RunAsync(ParseResult parse, Func<TextWriter, Task<int>> body)
    {
        TextWriter error = parse.InvocationConfiguration.Error;
        try
        {
            return await body(parse.InvocationConfiguration.Output);
        }
        catch (Exception ex) when (ex is UsageException or ModelFormatException or ArgumentException or FileNotFoundException or DirectoryNotFoundException
                                       or InvalidDataException or NotSupportedException
                                       or FormatException or Retrieval.BiEncoderMismatchException or Retrieval.CollectionFolderException or Retrieval.CollectionCorruptException
                                       or ModelOutputException
                                       or HubException { Kind: HubErrorKind.InvalidArgument or HubErrorKind.NotFound or HubErrorKind.NotCached })
        {
            error.WriteLine($"error: {Describe(ex)}");
            return UsageError;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The system refused (disk full, no permission): say so without a stack trace.
            error.WriteLine($"error: {ex.Message}");
            return 1;
        }
        catch (HubException ex)
        {
            error.WriteLine($"error: {ex.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled");
            return 130;
        }
    }

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
