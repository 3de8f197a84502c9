using System.CommandLine;
using Funnel.Cli;

namespace Funnel.Tests.Cli;

/// <summary>Runs <c>funnel</c> in-process with captured stdout and stderr.</summary>
internal static class CliRun
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }
}
