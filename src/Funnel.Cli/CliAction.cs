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
            error.WriteLine($"error: {ex.Message}");
            return UsageError;
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

    public static int Run(ParseResult parse, Func<TextWriter, int> body)
        => RunAsync(parse, output => Task.FromResult(body(output))).GetAwaiter().GetResult();
}
