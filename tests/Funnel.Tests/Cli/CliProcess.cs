using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Funnel.Tests.Cli;

/// <summary>Runs <c>funnel</c> as a child process (the Funnel.Cli.dll built beside the tests): for signals, crashes and environments of its own.</summary>
internal static partial class CliProcess
{
    /// <summary>Starts <c>funnel ARGS</c> with stdout and stderr redirected; <paramref name="environment"/> sets (or, with null, removes) variables.</summary>
    public static Process Start(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Funnel.Cli.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment)
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }
        return Process.Start(start) ?? throw new InvalidOperationException("could not start the CLI");
    }

    /// <summary>Runs <c>funnel ARGS</c> to completion (at most <paramref name="timeout"/>) and returns its exit code and output.</summary>
    public static async Task<(int Code, string Out, string Err)> RunAsync(IReadOnlyDictionary<string, string?> environment, TimeSpan timeout, params string[] args)
    {
        using Process cli = Start(environment, args);
        Task<string> stdout = cli.StandardOutput.ReadToEndAsync(), stderr = cli.StandardError.ReadToEndAsync();
        try
        {
            await cli.WaitForExitAsync().WaitAsync(timeout);
        }
        finally
        {
            if (!cli.HasExited) cli.Kill(entireProcessTree: true);
        }
        return (cli.ExitCode, await stdout, await stderr);
    }

    /// <summary>The address a <c>funnel serve --urls http://127.0.0.1:0</c> child listens on, read from its log on stdout.</summary>
    public static async Task<string> ListeningAddressAsync(Process server)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await server.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            if (ListeningOn().Match(line) is { Success: true } match) return match.Groups[1].Value;
        Assert.Fail($"the server exited before listening: {await server.StandardError.ReadToEndAsync()}");
        return "";
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
