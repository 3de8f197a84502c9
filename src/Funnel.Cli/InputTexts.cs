using System.Text.Json;

namespace Funnel.Cli;

/// <summary>A mistake in what the user gave the command: printed without a stack trace, exit code 2.</summary>
internal sealed class UsageException(string message) : FunnelException(FunnelErrorKind.InvalidInput, message);

/// <summary>
/// The texts a command works on: its positional arguments, or the lines of <c>--input FILE</c>
/// (<c>-</c> = stdin). A file whose first non-blank line starts with <c>{</c> is JSON Lines with a
/// string field "text" per line; otherwise every line is one text. Blank lines are skipped.
/// </summary>
internal static class InputTexts
{
    public static IEnumerable<string> Read(string? input, IReadOnlyList<string> arguments, TextReader stdin)
    {
        if (input is null) return arguments;
        if (arguments.Count > 0) throw new UsageException("give texts either as arguments or with --input, not both");
        if (input == "-") return Lines(stdin, "<stdin>");
        if (!File.Exists(input)) throw new UsageException($"{input}: input file not found");
        return FromFile(input);
    }

    private static IEnumerable<string> FromFile(string path)
    {
        using var reader = new StreamReader(path);
        foreach (string text in Lines(reader, path)) yield return text;
    }

    private static IEnumerable<string> Lines(TextReader reader, string name)
    {
        bool? jsonl = null;
        int number = 0;
        for (string? line = reader.ReadLine(); line != null; line = reader.ReadLine())
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            jsonl ??= line.TrimStart().StartsWith('{');
            yield return jsonl.Value ? TextOf(line, name, number) : line;
        }
    }

    private static string TextOf(string line, string name, int number)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("text", out JsonElement text)
                && text.ValueKind == JsonValueKind.String)
                return text.GetString()!;
        }
        catch (JsonException ex)
        {
            throw new UsageException($"{name}:{number}: invalid JSON ({ex.Message}); expected {{\"text\": \"...\"}} per line");
        }
        throw new UsageException($"{name}:{number}: expected a JSON object with a string field \"text\"");
    }
}

/// <summary>
/// The (query, document) pairs of <c>funnel rerank --pairs FILE</c> (<c>-</c> = stdin): JSON Lines with string fields
/// "sentence1" and "sentence2", or "query" and "document". Blank lines are skipped.
/// </summary>
internal static class InputPairs
{
    public static IEnumerable<(string, string)> Read(string input, TextReader stdin)
    {
        if (input == "-") return Lines(stdin, "<stdin>");
        if (!File.Exists(input)) throw new UsageException($"{input}: pairs file not found");
        return FromFile(input);
    }

    private static IEnumerable<(string, string)> FromFile(string path)
    {
        using var reader = new StreamReader(path);
        foreach (var pair in Lines(reader, path)) yield return pair;
    }

    private static IEnumerable<(string, string)> Lines(TextReader reader, string name)
    {
        int number = 0;
        for (string? line = reader.ReadLine(); line != null; line = reader.ReadLine())
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return PairOf(line, name, number);
        }
    }

    private static (string, string) PairOf(string line, string name, int number)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException ex)
        {
            throw new UsageException($"{name}:{number}: invalid JSON ({ex.Message}); expected {{\"sentence1\": \"...\", \"sentence2\": \"...\"}} per line");
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            foreach (var (a, b) in new[] { ("sentence1", "sentence2"), ("query", "document") })
                if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty(a, out JsonElement x) && root.TryGetProperty(b, out JsonElement y))
                    return x.ValueKind == JsonValueKind.String && y.ValueKind == JsonValueKind.String
                        ? (x.GetString()!, y.GetString()!)
                        : throw new UsageException($"{name}:{number}: fields \"{a}\" and \"{b}\" must be strings");
        }
        throw new UsageException($"{name}:{number}: expected a JSON object with \"sentence1\" and \"sentence2\" (or \"query\" and \"document\")");
    }
}
