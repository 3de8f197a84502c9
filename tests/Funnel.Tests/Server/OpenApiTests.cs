using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Funnel.Tests.Server;

/// <summary>The hand-written OpenAPI document and the routes the server really maps describe the same API.</summary>
[Collection(ServerCollection.Name)]
public sealed class OpenApiTests(SmallModels models)
{
    [Fact]
    public async Task TheDocumentListsExactlyTheMappedRoutes()
    {
        await using RunningServer server = await RunningServer.StartAsync(models.Both);
        Reply reply = await server.Client.GetReplyAsync("/openapi.json");
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        JsonElement document = reply.Json;
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString());

        var documented = new SortedSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty path in document.GetProperty("paths").EnumerateObject())
            foreach (JsonProperty operation in path.Value.EnumerateObject())
                if (operation.Name != "parameters")
                    documented.Add($"{operation.Name.ToUpperInvariant()} {path.Name}");

        var mapped = new SortedSet<string>(StringComparer.Ordinal);
        foreach (RouteEndpoint endpoint in server.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>())
            foreach (string method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? [])
                mapped.Add($"{method} {endpoint.RoutePattern.RawText!.Replace("{**", "{")}"); // OpenAPI has no catch-all syntax

        Assert.Equal(mapped, documented);
    }

    [Fact]
    public async Task EveryReferenceResolves()
    {
        await using RunningServer server = await RunningServer.StartAsync(models.Both);
        string text = (await server.Client.GetReplyAsync("/openapi.json")).Text;
        JsonElement schemas = JsonDocument.Parse(text).RootElement.GetProperty("components").GetProperty("schemas");
        foreach (System.Text.RegularExpressions.Match reference in System.Text.RegularExpressions.Regex.Matches(text, "\"#/components/schemas/([A-Za-z]+)\""))
            Assert.True(schemas.TryGetProperty(reference.Groups[1].Value, out _), $"unresolved {reference.Value}");
    }
}
