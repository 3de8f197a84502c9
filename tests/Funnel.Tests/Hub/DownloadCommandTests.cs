using System.CommandLine;
using Funnel.Cli;

namespace Funnel.Tests.Hub;

/// <summary>funnel download: argument mistakes are one clear line and exit code 2, before any network use.</summary>
public sealed class DownloadCommandTests
{
    [Theory]
    [InlineData("error: 'all-MiniLM-L6-v2' is not a Hub model id: expected org/name", "download", "all-MiniLM-L6-v2")]
    [InlineData("error: give the revision once: either 'org/name@v1' or --revision v2", "download", "org/name@v1", "--revision", "v2")]
    [InlineData("error: 'a b' is not a valid revision", "download", "org/name", "--revision", "a b")]
    public void Malformed_arguments_are_usage_errors(string expected, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();

        int code = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });

        Assert.Equal(2, code);
        Assert.StartsWith(expected, error.ToString(), StringComparison.Ordinal);
        Assert.Equal("", output.ToString());
    }
}
