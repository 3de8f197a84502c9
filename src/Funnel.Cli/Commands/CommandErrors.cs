using Funnel.Retrieval;

namespace Funnel.Cli.Commands;

/// <summary>Turns the errors bad input causes into one clear line on stderr and exit code 2, never a stack trace.</summary>
internal static class CommandErrors
{
    public const int BadInput = 2;

    public static async Task<int> RunAsync(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (IsUserError(e))
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return BadInput;
        }
    }

    private static bool IsUserError(Exception e) => e is FileNotFoundException or DirectoryNotFoundException or InvalidDataException
        or FormatException or ArgumentException or BiEncoderMismatchException or IOException or Inference.ModelFormatException;
}
