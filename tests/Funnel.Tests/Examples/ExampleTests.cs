using System.Diagnostics;
using System.Globalization;

namespace Funnel.Tests.Examples;

/// <summary>examples/Embed run as a user runs it: its output is the real all-MiniLM-L6-v2 vector of the model card's sentence.</summary>
public sealed class ExampleTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("funnel-example-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public async Task TheEmbedExamplePrintsThePublishedVector()
    {
        // The example is built beside the tests, in the same configuration (tests/Funnel.Tests/bin/<configuration>/net10.0).
        string configuration = Path.GetFileName(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory))!);
        string dll = Path.Combine(TestPaths.RepoRoot, "examples", "Embed", "bin", configuration, "net10.0", "Embed.dll");
        Assert.True(File.Exists(dll), $"{dll} was not built");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { dll, "This is an example sentence", "Each sentence is converted." }) start.ArgumentList.Add(arg);
        // A fresh machine: the packaged model is materialized into this test's folder, and nothing is fetched.
        start.Environment["FUNNEL_HOME"] = _home;
        start.Environment["HF_HOME"] = Path.Combine(_home, "hf");
        start.Environment["HF_HUB_OFFLINE"] = "1";
        using Process example = Process.Start(start)!;
        Task<string> stdout = example.StandardOutput.ReadToEndAsync(), stderr = example.StandardError.ReadToEndAsync();
        await example.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(example.ExitCode == 0, await stderr);

        string[] lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // The model card's values (0.06765693, 0.06349593, …) to the 4 decimals the example prints.
        Assert.Equal("This is an example sentence: 384 dims, [0.0677, 0.0635, 0.0487, 0.0793, 0.0374, 0.0027, ...]", lines[0]);
        Assert.StartsWith("Each sentence is converted.: 384 dims, [0.0785, 0.0886, -0.0021, -0.0072, -0.0125, 0.0188, ...]", lines[1]);
        float cosine = float.Parse(lines[2]["cosine(first, second) = ".Length..], CultureInfo.InvariantCulture);
        Assert.InRange(cosine, 0.2f, 0.9f); // related sentences: similar, not the same
    }
}
