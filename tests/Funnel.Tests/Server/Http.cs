using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Funnel.Tests.Server;

/// <summary>A response read whole: status, headers and the JSON (or text) body.</summary>
internal sealed record Reply(HttpStatusCode Status, string? ContentType, string Text, HttpResponseMessage Message)
{
    public JsonElement Json => JsonDocument.Parse(Text).RootElement;
}

internal static class Http
{
    public static Task<Reply> PostAsync(this HttpClient client, string path, object body) =>
        client.PostRawAsync(path, JsonSerializer.Serialize(body));

    public static async Task<Reply> PostRawAsync(this HttpClient client, string path, string body, string contentType = "application/json")
    {
        using var content = new StringContent(body, Encoding.UTF8, contentType);
        return await ReadAsync(await client.PostAsync(path, content));
    }

    public static async Task<Reply> GetReplyAsync(this HttpClient client, string path) => await ReadAsync(await client.GetAsync(path));

    public static async Task<Reply> SendReplyAsync(this HttpClient client, HttpRequestMessage request) => await ReadAsync(await client.SendAsync(request));

    private static async Task<Reply> ReadAsync(HttpResponseMessage response) =>
        new(response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync(), response);

    /// <summary>
    /// The value of one exposition series, e.g. <c>funnel_batch_size_count{model="x"}</c>: the same name and label set, in any
    /// label order (the exporter sorts them), with any timestamp after the value ignored.
    /// </summary>
    public static double Metric(string exposition, string series)
    {
        var wanted = Series(series);
        var values = exposition.Split('\n').Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => (Series: Series(l[..SeriesEnd(l)]), Value: l[(SeriesEnd(l) + 1)..].Split(' ')[0]))
            .Where(s => s.Series.Name == wanted.Name && s.Series.Labels.SetEquals(wanted.Labels)).ToList();
        Assert.True(values.Count == 1, $"{values.Count} series {series} in:\n{exposition}");
        return double.Parse(values[0].Value, CultureInfo.InvariantCulture);
    }

    private static int SeriesEnd(string line) => line.IndexOf('}') is >= 0 and var brace ? brace + 1 : line.IndexOf(' ');

    private static (string Name, HashSet<string> Labels) Series(string series)
    {
        int brace = series.IndexOf('{');
        if (brace < 0) return (series, []);
        var labels = System.Text.RegularExpressions.Regex.Matches(series[brace..], "[A-Za-z_][A-Za-z0-9_]*=\"(?:[^\"\\\\]|\\\\.)*\"").Select(m => m.Value);
        return (series[..brace], [.. labels]);
    }

    /// <summary>Polls <c>/metrics</c> until <paramref name="model"/>'s batch queue holds <paramref name="depth"/> items.</summary>
    public static async Task WaitForQueueDepthAsync(HttpClient client, string model, int depth)
    {
        for (int attempt = 0; attempt < 1000; attempt++)
        {
            string metrics = (await client.GetReplyAsync("/metrics")).Text;
            if (Metric(metrics, $"funnel_batch_queue_depth{{model=\"{model}\"}}") >= depth) return;
            await Task.Delay(10);
        }
        Assert.Fail($"the queue of {model} never reached {depth} items");
    }

    public static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetSingle())];

    /// <summary>Asserts an RFC 7807 problem with this status whose detail mentions <paramref name="mentions"/>.</summary>
    public static JsonElement AssertProblem(Reply reply, HttpStatusCode status, string? field = null, string? mentions = null)
    {
        Assert.Equal(status, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        JsonElement problem = reply.Json;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()));
        string detail = problem.GetProperty("detail").GetString()!;
        Assert.Equal(detail, problem.GetProperty("error").GetString());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("traceId").GetString()));
        Assert.DoesNotContain("   at ", reply.Text); // no stack trace
        if (field is not null) Assert.Equal(field, problem.GetProperty("field").GetString());
        if (mentions is not null) Assert.Contains(mentions, detail, StringComparison.OrdinalIgnoreCase);
        return problem;
    }
}
