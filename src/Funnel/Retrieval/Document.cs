namespace Funnel.Retrieval;

/// <summary>A document of a collection. <paramref name="Id"/> is the caller's key: adding a document with an existing id replaces it.</summary>
public sealed record Document(string Id, string Title, string Text, IReadOnlyDictionary<string, string> Metadata)
{
    public static readonly IReadOnlyDictionary<string, string> NoMetadata = new Dictionary<string, string>();

    public Document(string id, string text) : this(id, "", text, NoMetadata) { }

    /// <summary>The text that is chunked and embedded, and that BM25 indexes: title and body, as BEIR evaluates them.</summary>
    public string FullText => Title.Length == 0 ? Text : Text.Length == 0 ? Title : Title + " " + Text;

    /// <summary>
    /// A metadata value as a collection stores it: strings as they are, numbers and booleans as their JSON text; null for
    /// anything else (objects, arrays, null), which filters could never match. Shared by every JSON reader of documents.
    /// </summary>
    public static string? MetadataValue(System.Text.Json.JsonElement value) => value.ValueKind switch
    {
        System.Text.Json.JsonValueKind.String => value.GetString(),
        System.Text.Json.JsonValueKind.Number or System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False => value.GetRawText(),
        _ => null,
    };

    /// <summary>A search query needs a word: empty and whitespace-only queries are refused the same way everywhere.</summary>
    public static string? QueryProblem(string? query) => string.IsNullOrWhiteSpace(query) ? "the query is empty (or only whitespace)" : null;
}
