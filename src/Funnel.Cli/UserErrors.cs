using System.CommandLine;
using System.Text.Json;
using Funnel.Inference.Hub;

namespace Funnel.Cli;

/// <summary>
/// Runs a command's body and turns the errors a user can cause (a missing folder or file, a malformed
/// config, a bad parameter, an unknown Hub model) into one line on stderr and exit code 2, never a
/// stack trace. Other failures print one line too and exit with 1.
/// </summary>
internal static class UserErrors
{
    public const int UsageExitCode = 2;
    public const int FailureExitCode = 1;

    public static async Task<int> RunAsync(ParseResult parse, Func<TextWriter, Task<int>> body)
    {
        TextWriter stderr = parse.InvocationConfiguration.Error;
        try
        {
            return await body(parse.InvocationConfiguration.Output);
        }
        catch (OperationCanceledException)
        {
            await stderr.WriteLineAsync("funnel: cancelled");
            return 130;
        }
        catch (Exception e) when (IsUserError(e))
        {
            await stderr.WriteLineAsync($"funnel: error: {e.Message}");
            return UsageExitCode;
        }
        catch (Exception e)
        {
            await stderr.WriteLineAsync($"funnel: failed: {e.Message} ({e.GetType().Name})");
            return FailureExitCode;
        }
    }

    private static bool IsUserError(Exception e) => e switch
    {
        HubException hub => hub.Kind is not (HubErrorKind.Network or HubErrorKind.Integrity),
        FileNotFoundException or DirectoryNotFoundException or InvalidDataException or JsonException
            or ArgumentException or NotSupportedException or UnauthorizedAccessException => true,
        _ => false,
    };
}
