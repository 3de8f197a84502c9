using System.Text.Json;

namespace Funnel.Inference;

/// <summary>
/// The sentence-transformers pipeline of a bi-encoder folder: <c>modules.json</c> (Transformer →
/// Pooling → optional Normalize), <c>1_Pooling/config.json</c>, <c>sentence_bert_config.json</c> and
/// the prompts of <c>config_sentence_transformers.json</c>. A plain Hugging Face folder without
/// modules.json gets mean pooling and no normalisation, as sentence-transformers gives it.
/// </summary>
internal sealed record SentenceTransformerConfig(PoolingMode Pooling, bool Normalize, int? MaxSeqLength,
    IReadOnlyDictionary<string, string> Prompts, string? DefaultPromptName)
{
    public static SentenceTransformerConfig Load(string modelDir)
    {
        PoolingMode pooling = PoolingMode.Mean;
        bool normalize = false;
        string modulesPath = Path.Combine(modelDir, "modules.json");
        if (File.Exists(modulesPath))
        {
            using JsonDocument modules = ReadJson(modulesPath);
            if (modules.RootElement.ValueKind != JsonValueKind.Array) throw new ModelFormatException($"{modulesPath}: expected a JSON array of modules");
            foreach (JsonElement m in modules.RootElement.EnumerateArray())
            {
                string type = m.TryGetProperty("type", out JsonElement t) ? t.GetString() ?? "" : "";
                string sub = m.TryGetProperty("path", out JsonElement p) ? p.GetString() ?? "" : "";
                switch (type)
                {
                    case "sentence_transformers.models.Transformer":
                        break;
                    case "sentence_transformers.models.Pooling":
                        string poolPath = Path.Combine(modelDir, sub, "config.json");
                        if (!File.Exists(poolPath)) throw new ModelFormatException($"{modulesPath}: the Pooling module's config {poolPath} is missing");
                        using (JsonDocument pool = ReadJson(poolPath))
                        {
                            pooling = Inference.Pooling.Parse(pool.RootElement, poolPath);
                            if (pool.RootElement.TryGetProperty("include_prompt", out JsonElement include) && include.ValueKind == JsonValueKind.False)
                                throw new ModelFormatException($"{poolPath}: include_prompt false (pooling without the prompt's tokens) is not supported");
                        }
                        break;
                    case "sentence_transformers.models.Normalize":
                        normalize = true;
                        break;
                    default:
                        throw new ModelFormatException($"{modulesPath}: unsupported module \"{type}\" (supported: Transformer, Pooling, Normalize)");
                }
            }
        }
        int? maxSeq = null;
        string sbertPath = Path.Combine(modelDir, "sentence_bert_config.json");
        if (File.Exists(sbertPath))
        {
            using JsonDocument sbert = ReadJson(sbertPath);
            if (sbert.RootElement.TryGetProperty("max_seq_length", out JsonElement v) && v.ValueKind == JsonValueKind.Number)
                maxSeq = v.TryGetInt32(out int n) && n >= 2 ? n : throw new ModelFormatException($"{sbertPath}: max_seq_length must be an integer ≥ 2, got {v.GetRawText()}");
        }
        var (prompts, defaultPrompt) = LoadPrompts(modelDir);
        return new SentenceTransformerConfig(pooling, normalize, maxSeq, prompts, defaultPrompt);
    }

    private static (Dictionary<string, string> Prompts, string? Default) LoadPrompts(string modelDir)
    {
        var prompts = new Dictionary<string, string>(StringComparer.Ordinal);
        string path = Path.Combine(modelDir, "config_sentence_transformers.json");
        if (!File.Exists(path)) return (prompts, null);
        using JsonDocument doc = ReadJson(path);
        if (doc.RootElement.TryGetProperty("prompts", out JsonElement p) && p.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty prompt in p.EnumerateObject())
                prompts[prompt.Name] = prompt.Value.ValueKind == JsonValueKind.String
                    ? prompt.Value.GetString()!
                    : throw new ModelFormatException($"{path}: prompts[\"{prompt.Name}\"] must be a string");
        }
        string? defaultName = doc.RootElement.TryGetProperty("default_prompt_name", out JsonElement d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        if (defaultName != null && !prompts.ContainsKey(defaultName))
            throw new ModelFormatException($"{path}: default_prompt_name \"{defaultName}\" is not one of the prompts ({string.Join(", ", prompts.Keys)})");
        return (prompts, defaultName);
    }

    internal static JsonDocument ReadJson(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException($"{path}: invalid JSON: {ex.Message}", ex);
        }
    }
}
