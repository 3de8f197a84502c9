using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Funnel.Server;

namespace Funnel.Tests.Server;

/// <summary>The HTTP API doc's "Collections" curl session (docs/http-api.md), run as written against a real server: every call succeeds, and the
/// filtered search finds the document (issue 11, defect 9: the example's PUT dropped the metadata the filter needs).</summary>
[Collection(ServerCollection.Name)]
public sealed partial class ReadmeExampleTests(SmallModels models)
{
    private static IEnumerable<(HttpMethod Method, string Path, string? Body)> ReadmeCalls()
    {
        string readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "docs", "http-api.md"));
        int section = readme.IndexOf("\n## Collections\n", StringComparison.Ordinal);
        int start = readme.IndexOf("```sh\n", section, StringComparison.Ordinal) + 6;
        string block = readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)].Replace("\\\n", " ");
        foreach (string line in block.Split('\n').Where(l => l.StartsWith("curl ", StringComparison.Ordinal)))
        {
            string? body = Body().Match(line) is { Success: true } b ? b.Groups[1].Value : null;
            string method = Method().Match(line) is { Success: true } m ? m.Groups[1].Value : body is null ? "GET" : "POST";
            yield return (new HttpMethod(method), Url().Match(line).Groups[1].Value, body);
        }
    }

    [GeneratedRegex(@" -d '([^']*)'")]
    private static partial Regex Body();

    [GeneratedRegex(@" -X (\w+)")]
    private static partial Regex Method();

    [GeneratedRegex(@"localhost:8080(/\S*)")]
    private static partial Regex Url();

    [Fact]
    public async Task Defect9_TheReadmeCollectionsSessionWorksAndItsFilteredSearchFindsTheDocument()
    {
        string root = Path.Combine(Path.GetTempPath(), $"funnel-readme-{Guid.NewGuid():N}");
        try
        {
            await using RunningServer server = await RunningServer.StartAsync(models.Both, new ServerOptions { CollectionsDirectory = root });
            var calls = ReadmeCalls().ToList();
            Assert.True(calls.Count >= 10, $"found {calls.Count} curl calls");
            bool searched = false;
            foreach (var (method, path, body) in calls)
            {
                using var request = new HttpRequestMessage(method, path);
                if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                Reply reply = await server.Client.SendReplyAsync(request);
                Assert.True((int)reply.Status < 300, $"{method} {path}: {(int)reply.Status} {reply.Text}");
                if (!path.EndsWith("/search", StringComparison.Ordinal)) continue;
                searched = true;
                var ids = reply.Json.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).ToList();
                Assert.Contains("d1", ids);
                Assert.All(reply.Json.GetProperty("results").EnumerateArray(), r => Assert.Equal("en", r.GetProperty("metadata").GetProperty("lang").GetString()));
            }
            Assert.True(searched);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
