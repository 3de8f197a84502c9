using System.CommandLine;
using Funnel.Inference;

namespace Funnel.Cli;

/// <summary>Runs a command body, turning the user's mistakes into one clear line on stderr and
/// exit code 2 instead of a stack trace.</summary>
internal static class CliAction
{
    public const int UsageError = 2;

    public static int Run(ParseResult parse, Func<TextWriter, int> body)
    {
        TextWriter error = parse.InvocationConfiguration.Error;
        try
        {
            return body(parse.InvocationConfiguration.Output);
        }
        catch (Exception ex) when (ex is UsageException or ModelFormatException or ArgumentException or FileNotFoundException or DirectoryNotFoundException)
        {
            error.WriteLine($"error: {ex.Message}");
            return UsageError;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled");
            return 130;
        }
    }

    /// <summary>The <c>--model</c> value as a model folder.</summary>
    public static string ModelFolder(string model)
        => Directory.Exists(model) ? model : throw new UsageException($"{model}: model folder not found (pass a folder holding config.json and model.safetensors; `funnel model random` makes one)");
}
