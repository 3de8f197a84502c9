using System.Globalization;
using Microsoft.Extensions.AI;

namespace Funnel.Inference;

/// <summary>What an input to a bi-encoder is: it picks the prompt sentence-transformers v5 would prepend.</summary>
public enum EmbeddingRole
{
    /// <summary>The model's default prompt (usually none), as <c>encode</c>.</summary>
    Default,
    /// <summary>A search query, as <c>encode_query</c>.</summary>
    Query,
    /// <summary>A document or one of its chunks, as <c>encode_document</c>.</summary>
    Document,
}

/// <summary>
/// How <see cref="SentenceEncoder"/> (and the service's batching generator) read an <see cref="EmbeddingGenerationOptions"/>:
/// plain values under <see cref="EmbeddingGenerationOptions.AdditionalProperties"/>, so that middleware which logs, caches or
/// serializes options (caching generators key on them) sees them as they are. The keys are the names TEI and the
/// Cohere/Voyage embedding APIs give these fields.
/// </summary>
public sealed record SentenceEmbeddingOptions
{
    /// <summary>"query" or "document" (absent: <see cref="EmbeddingRole.Default"/>).</summary>
    public const string RoleKey = "input_type";

    /// <summary>One of the model's prompt names; overrides the role's prompt.</summary>
    public const string PromptNameKey = "prompt_name";

    /// <summary>true or false: unit-length vectors or the raw pooled ones (absent: as the model's Normalize module says).</summary>
    public const string NormalizeKey = "normalize";

    /// <summary>true or false: cut inputs longer than the window (the default), or refuse them with <see cref="InputTooLongException"/>.</summary>
    public const string TruncateKey = "truncate";

    /// <summary>A whole number of milliseconds: a queued generator (the service's batcher) refuses with
    /// <see cref="ModelUnavailableException"/> what it cannot finish in time; the in-process encoder starts at once and ignores it.</summary>
    public const string TimeoutKey = "timeout_ms";

    public EmbeddingRole Role { get; init; }

    public string? PromptName { get; init; }

    public bool? Normalize { get; init; }

    public bool Truncate { get; init; } = true;

    public TimeSpan? Timeout { get; init; }

    /// <summary>Options for queries (<see cref="EmbeddingRole.Query"/>).</summary>
    public static EmbeddingGenerationOptions ForQueries() => new SentenceEmbeddingOptions { Role = EmbeddingRole.Query }.ToGenerationOptions();

    /// <summary>Options for documents (<see cref="EmbeddingRole.Document"/>).</summary>
    public static EmbeddingGenerationOptions ForDocuments() => new SentenceEmbeddingOptions { Role = EmbeddingRole.Document }.ToGenerationOptions();

    /// <summary>These settings as generation options (only what differs from the defaults is written).</summary>
    public EmbeddingGenerationOptions ToGenerationOptions()
    {
        var properties = new AdditionalPropertiesDictionary();
        if (Role != EmbeddingRole.Default) properties[RoleKey] = Role == EmbeddingRole.Query ? "query" : "document";
        if (PromptName is not null) properties[PromptNameKey] = PromptName;
        if (Normalize is { } normalize) properties[NormalizeKey] = normalize;
        if (!Truncate) properties[TruncateKey] = false;
        if (Timeout is { } timeout) properties[TimeoutKey] = (long)Math.Ceiling(timeout.TotalMilliseconds);
        return new EmbeddingGenerationOptions { AdditionalProperties = properties };
    }

    /// <summary>Reads the settings out of <paramref name="options"/> (null: the defaults).</summary>
    /// <exception cref="ArgumentException">A value of the wrong kind, naming the key and what it takes.</exception>
    public static SentenceEmbeddingOptions From(EmbeddingGenerationOptions? options)
    {
        AdditionalPropertiesDictionary? properties = options?.AdditionalProperties;
        if (properties is null || properties.Count == 0) return Defaults;
        return new SentenceEmbeddingOptions
        {
            Role = Text(properties, RoleKey) switch
            {
                null => EmbeddingRole.Default,
                "query" => EmbeddingRole.Query,
                "document" => EmbeddingRole.Document,
                string other => throw new ArgumentException($"embedding option '{RoleKey}' is \"{other}\"; expected \"query\" or \"document\"", nameof(options)),
            },
            PromptName = Text(properties, PromptNameKey),
            Normalize = Flag(properties, NormalizeKey),
            Truncate = Flag(properties, TruncateKey) ?? true,
            Timeout = Milliseconds(properties, TimeoutKey),
        };
    }

    private static readonly SentenceEmbeddingOptions Defaults = new();

    private static string? Text(AdditionalPropertiesDictionary properties, string key) => properties.TryGetValue(key, out object? value) switch
    {
        false => null,
        true when value is null or string => (string?)value,
        _ => throw new ArgumentException($"embedding option '{key}' must be a string, got {value!.GetType().Name}", "options"),
    };

    private static TimeSpan? Milliseconds(AdditionalPropertiesDictionary properties, string key)
    {
        if (!properties.TryGetValue(key, out object? value) || value is null) return null;
        double? ms = value switch
        {
            int i => i,
            long l => l,
            double d => d,
            System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.Number } json => json.GetDouble(),
            _ => null,
        };
        return ms is > 0 and < 86_400_000 ? TimeSpan.FromMilliseconds(ms.Value)
            : throw new ArgumentException($"embedding option '{key}' must be a positive number of milliseconds, got {Convert.ToString(value, CultureInfo.InvariantCulture)}", "options");
    }

    private static bool? Flag(AdditionalPropertiesDictionary properties, string key)
    {
        if (!properties.TryGetValue(key, out object? value) || value is null) return null;
        return value switch
        {
            bool b => b,
            string s when bool.TryParse(s, out bool parsed) => parsed,
            System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False } json => json.GetBoolean(),
            _ => throw new ArgumentException($"embedding option '{key}' must be true or false, got {Convert.ToString(value, CultureInfo.InvariantCulture)}", "options"),
        };
    }
}

/// <summary>An input is longer than the model's window and truncation was not allowed.</summary>
public sealed class InputTooLongException(int index, int tokens, int maxTokens)
    : FunnelException(FunnelErrorKind.TooLarge, $"input {index} is {tokens} tokens long, more than the model's window of {maxTokens}")
{
    /// <summary>The input's position in the caller's list.</summary>
    public int Index { get; } = index;

    /// <summary>Its length in tokens, special tokens (and a prompt) included.</summary>
    public int Tokens { get; } = tokens;

    public int MaxTokens { get; } = maxTokens;
}
