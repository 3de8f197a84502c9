using System.Text.Json;

namespace Funnel.Server.Http;

/// <summary>
/// A request's JSON object with typed, validating accessors: each failure is an <see cref="ApiException"/> that
/// names the field (as a JSON path such as <c>documents[2].text</c>) and what was expected.
/// </summary>
internal sealed class JsonBody
{
    private readonly JsonElement _root;
    private readonly string _prefix;

    private JsonBody(JsonElement root, string prefix)
    {
        _root = root;
        _prefix = prefix;
    }

    /// <summary>Reads and parses the body; it must be one JSON object.</summary>
    public static async Task<JsonBody> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, new JsonDocumentOptions { MaxDepth = 32 }, cancellationToken);
        }
        catch (JsonException ex)
        {
            string where = ex.LineNumber is { } line ? $" at line {line + 1}, byte {ex.BytePositionInLine + 1}" : "";
            string detail = request.ContentLength == 0 || ex.BytePositionInLine == 0 && ex.LineNumber == 0
                ? "the request body is empty or not JSON; send a JSON object"
                : $"the request body is not valid JSON{where}";
            throw ApiException.Malformed(detail);
        }
        request.HttpContext.Response.RegisterForDispose(document);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
            throw ApiException.Invalid("$", $"the request body must be a JSON object, got {Describe(document.RootElement)}");
        return new JsonBody(document.RootElement, "");
    }

    /// <summary>An object nested in a request (e.g. one document of a batch); errors name it by <paramref name="path"/>.</summary>
    public static JsonBody Of(JsonElement element, string path)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw ApiException.Invalid(path, $"'{path}' must be an object, got {Describe(element)}");
        return new JsonBody(element, path + ".");
    }

    public bool Has(string field) => TryGet(field, out _);

    public string RequiredString(string field, bool allowEmpty = false)
    {
        JsonElement value = Required(field, "a string");
        if (value.ValueKind != JsonValueKind.String) throw WrongType(field, "a string", value);
        string text = Text(value, Path(field));
        if (!allowEmpty && text.Length == 0) throw ApiException.Invalid(Path(field), $"'{Path(field)}' must not be empty");
        return text;
    }

    public string? OptionalString(string field)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        if (value.ValueKind != JsonValueKind.String) throw WrongType(field, "a string", value);
        return Text(value, Path(field));
    }

    public bool OptionalBool(string field, bool defaultValue)
    {
        if (!TryGet(field, out JsonElement value)) return defaultValue;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(field, "true or false", value),
        };
    }

    public int? OptionalInt(string field, int min, int max)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long number))
            throw WrongType(field, "an integer", value);
        if (number < min || number > max)
            throw ApiException.Invalid(Path(field), $"'{Path(field)}' must be between {min} and {max}, got {number}");
        return (int)number;
    }

    public double? OptionalDouble(string field, double min, double max)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || !double.IsFinite(number))
            throw WrongType(field, "a number", value);
        if (number < min || number > max)
            throw ApiException.Invalid(Path(field), string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"'{Path(field)}' must be between {min} and {max}, got {number}"));
        return number;
    }

    /// <summary>One of <paramref name="allowed"/> (case-insensitive), or null when absent.</summary>
    public string? OptionalChoice(string field, params string[] allowed)
    {
        string? value = OptionalString(field);
        if (value is null) return null;
        foreach (string choice in allowed)
            if (string.Equals(choice, value, StringComparison.OrdinalIgnoreCase)) return choice;
        throw ApiException.Invalid(Path(field), $"'{Path(field)}' must be one of {string.Join(", ", allowed.Select(a => $"\"{a}\""))}, got \"{value}\"");
    }

    /// <summary>A string, or a non-empty array of strings (TEI's and OpenAI's <c>inputs</c>/<c>input</c>).</summary>
    public IReadOnlyList<string> StringOrStrings(string field, out bool wasArray)
    {
        JsonElement value = Required(field, "a string or an array of strings");
        if (value.ValueKind == JsonValueKind.String)
        {
            wasArray = false;
            return [Text(value, Path(field))];
        }
        if (value.ValueKind != JsonValueKind.Array) throw WrongType(field, "a string or an array of strings", value);
        wasArray = true;
        return Strings(field, value);
    }

    /// <summary>A non-empty array of strings.</summary>
    public IReadOnlyList<string> RequiredStrings(string field)
    {
        JsonElement value = Required(field, "an array of strings");
        if (value.ValueKind != JsonValueKind.Array) throw WrongType(field, "an array of strings", value);
        return Strings(field, value);
    }

    /// <summary>A non-empty array; each element is handed to the caller with its JSON path.</summary>
    public IReadOnlyList<T> RequiredArray<T>(string field, string expected, Func<JsonElement, string, T> read)
    {
        JsonElement value = Required(field, $"an array of {expected}");
        if (value.ValueKind != JsonValueKind.Array) throw WrongType(field, $"an array of {expected}", value);
        if (value.GetArrayLength() == 0) throw ApiException.Invalid(Path(field), $"'{Path(field)}' must not be empty");
        var items = new List<T>(value.GetArrayLength());
        int i = 0;
        foreach (JsonElement item in value.EnumerateArray())
            items.Add(read(item, $"{Path(field)}[{i++}]"));
        return items;
    }

    /// <summary>An optional object whose values are all strings (metadata, filters).</summary>
    public IReadOnlyDictionary<string, string>? OptionalStringMap(string field)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        if (value.ValueKind != JsonValueKind.Object) throw WrongType(field, "an object of string values", value);
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (JsonProperty property in value.EnumerateObject())
        {
            string path = $"{Path(field)}.{property.Name}";
            map[property.Name] = property.Value.ValueKind switch
            {
                JsonValueKind.String => Text(property.Value, path),
                JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => property.Value.GetRawText(),
                _ => throw ApiException.Invalid(path, $"'{path}' must be a string, number or boolean, got {Describe(property.Value)}"),
            };
        }
        return map;
    }

    /// <summary>The raw element of an optional field, for shapes the accessors above do not cover.</summary>
    public bool TryGet(string field, out JsonElement value)
    {
        if (_root.TryGetProperty(field, out value) && value.ValueKind != JsonValueKind.Null) return true;
        value = default;
        return false;
    }

    public string Path(string field) => _prefix + field;

    public ApiException WrongType(string field, string expected, JsonElement got) =>
        ApiException.Invalid(Path(field), $"'{Path(field)}' must be {expected}, got {Describe(got)}");

    public static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.Null => "null",
        _ => element.ValueKind.ToString(),
    };

    /// <summary>A JSON string's value; escapes of lone surrogates (<c>"\ud800"</c>) parse but are not text.</summary>
    public static string Text(JsonElement element, string path)
    {
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw ApiException.Invalid(path, $"'{path}' is not valid Unicode text (it escapes a lone surrogate)");
        }
    }

    private JsonElement Required(string field, string expected)
    {
        if (!TryGet(field, out JsonElement value))
            throw ApiException.Invalid(Path(field), $"'{Path(field)}' is required: {expected}");
        return value;
    }

    private IReadOnlyList<string> Strings(string field, JsonElement array)
    {
        int count = array.GetArrayLength();
        if (count == 0) throw ApiException.Invalid(Path(field), $"'{Path(field)}' must not be empty");
        var strings = new string[count];
        int i = 0;
        foreach (JsonElement item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid($"{Path(field)}[{i}]", $"'{Path(field)}[{i}]' must be a string, got {Describe(item)}");
            strings[i] = Text(item, $"{Path(field)}[{i}]");
            i++;
        }
        return strings;
    }
}
