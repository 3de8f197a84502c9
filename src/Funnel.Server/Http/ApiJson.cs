using System.Text.Json;
using System.Text.Json.Serialization;

namespace Funnel.Server.Http;

/// <summary>How responses are serialized: snake_case members (as TEI, OpenAI and Cohere clients expect), nulls left out.</summary>
internal static class ApiJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
