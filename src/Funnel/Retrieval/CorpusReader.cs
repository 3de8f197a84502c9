using System.Runtime.CompilerServices;
using System.Text.Json;
using Funnel.Evaluation;

namespace Funnel.Retrieval;

/// <summary>
/// Reads documents to index from a JSONL file (one <c>{"id"|"_id", "title"?, "text", "metadata"?}</c> object a line, the
/// BEIR corpus format), or a BEIR dataset folder or zip (through <see cref="BeirDataset"/>).
/// Metadata values that are not strings are kept as their JSON text. Malformed input fails with the file and line.
/// </summary>
public static class CorpusReader
{
    public static async IAsyncEnumerable<Document> ReadAsync(string path, [EnumeratorCancellation] CancellationToken ct = default)
    {
        if (Directory.Exists(path) || (File.Exists(path) && path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)))
        {
            using BeirDataset beir = BeirDataset.Open(path);
            await foreach (Document d in beir.ReadCorpusAsync(ct)) yield return d;
        }
        else if (File.Exists(path))
        {
            await foreach (Document d in ReadJsonlAsync(File.OpenRead(path), path, ct)) yield return d;
        }
        else throw new FileNotFoundException($"corpus '{path}' does not exist (expected a .jsonl file, a BEIR folder or a BEIR .zip)", path);
    }

    /// <summary>Reads JSONL documents from <paramref name="stream"/> (disposed at the end); <paramref name="name"/> names it in errors.</summary>
    public static async IAsyncEnumerable<Document> ReadJsonlAsync(Stream stream, string name, [EnumeratorCancellation] CancellationToken ct = default)
    {
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        int lineNumber = 0;
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return ParseLine(line, name, lineNumber);
        }
    }

    public static Document ParseLine(string line, string name, int lineNumber)
    {
        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw Error(name, lineNumber, $"not valid JSON ({e.Message})");
        }
        using (json)
        {
            JsonElement root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Error(name, lineNumber, $"expected a JSON object, found {root.ValueKind}");
            string id = (root.TryGetProperty("id", out JsonElement idElement) || root.TryGetProperty("_id", out idElement)) && idElement.ValueKind is JsonValueKind.String or JsonValueKind.Number
                ? idElement.ValueKind == JsonValueKind.String ? idElement.GetString()! : idElement.GetRawText()
                : throw Error(name, lineNumber, "missing \"id\" (or \"_id\"): expected a string or number");
            if (id.Length == 0) throw Error(name, lineNumber, "\"id\" is empty");
            string text = root.TryGetProperty("text", out JsonElement textElement) && textElement.ValueKind == JsonValueKind.String
                ? textElement.GetString()!
                : throw Error(name, lineNumber, $"document '{id}': missing \"text\" (expected a string)");
            string title = "";
            if (root.TryGetProperty("title", out JsonElement titleElement) && titleElement.ValueKind != JsonValueKind.Null)
                title = titleElement.ValueKind == JsonValueKind.String ? titleElement.GetString()! : throw Error(name, lineNumber, $"document '{id}': \"title\" must be a string");
            IReadOnlyDictionary<string, string> metadata = Document.NoMetadata;
            if (root.TryGetProperty("metadata", out JsonElement metadataElement) && metadataElement.ValueKind != JsonValueKind.Null)
            {
                if (metadataElement.ValueKind != JsonValueKind.Object) throw Error(name, lineNumber, $"document '{id}': \"metadata\" must be an object");
                var values = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (JsonProperty property in metadataElement.EnumerateObject())
                    values[property.Name] = Document.MetadataValue(property.Value);
                if (values.Count > 0) metadata = values;
            }
            return new Document(id, title, text, metadata);
        }
    }

    private static InvalidDataException Error(string name, int line, string what) => new($"{name}, line {line}: {what}");
}
