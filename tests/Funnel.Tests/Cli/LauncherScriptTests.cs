using System.Diagnostics;

namespace Funnel.Tests.Cli;

/// <summary>The <c>./funnel</c> launcher, run with a stand-in <c>dotnet</c> so that no real build happens.</summary>
public sealed class LauncherScriptTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("funnel-launcher-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private (int Code, string Out, string Err) Launch(params string[] args)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(_root, "funnel"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        start.Environment["PATH"] = $"{Path.Combine(_root, "fake-bin")}:{Environment.GetEnvironmentVariable("PATH")}";
        using Process process = Process.Start(start)!;
        string stdout = process.StandardOutput.ReadToEnd(), stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // a bash script
    public void Defect9_TheFirstBuildSaysSoOnStderrAndLaterRunsDoNot()
    {
        File.Copy(Path.Combine(TestPaths.RepoRoot, "funnel"), Path.Combine(_root, "funnel"));
        Directory.CreateDirectory(Path.Combine(_root, "src", "Funnel.Cli"));
        File.WriteAllText(Path.Combine(_root, "src", "Funnel.Cli", "Program.cs"), "// source");
        string fakeBin = Directory.CreateDirectory(Path.Combine(_root, "fake-bin")).FullName;
        string dotnet = Path.Combine(fakeBin, "dotnet");
        // "dotnet publish … -o DIR" writes the dll there; "dotnet X.dll ARGS" prints what it was asked to run.
        File.WriteAllText(dotnet, """
            #!/usr/bin/env bash
            if [[ "$1" == publish ]]; then
              while [[ "$1" != -o ]]; do shift; done
              mkdir -p "$2"; touch "$2/Funnel.Cli.dll"; exit 0
            fi
            echo "ran ${*:2}"
            """.Replace("\r", ""));
        File.SetUnixFileMode(dotnet, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var first = Launch("version");
        Assert.True(first.Code == 0, first.Err);
        Assert.Contains("building funnel (first run", first.Err);
        Assert.Equal("ran version\n", first.Out);

        var second = Launch("version");
        Assert.Equal(0, second.Code);
        Assert.Equal("", second.Err);
        Assert.Equal("ran version\n", second.Out);
    }
}
