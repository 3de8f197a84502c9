using System.Text.Json;

namespace Funnel.Inference;

/// <summary>The head on top of the BERT encoder, from <c>config.json</c>'s "architectures".</summary>
public enum BertArchitecture
{
    /// <summary><c>BertModel</c>: the encoder (and pooler); used by sentence-transformers bi-encoders.</summary>
    BertModel,
    /// <summary><c>BertForSequenceClassification</c>: pooler + classifier; cross-encoders.</summary>
    BertForSequenceClassification,
}

/// <summary>The subset of a Hugging Face BERT <c>config.json</c> that inference needs, validated.</summary>
public sealed record BertConfig
{
    public required BertArchitecture Architecture { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int IntermediateSize { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public required int TypeVocabSize { get; init; }
    public float LayerNormEps { get; init; } = 1e-12f;
    public int NumLabels { get; init; } = 1;
    /// <summary>sentence-transformers' cross-encoder activation class name, when the config names one.</summary>
    public string? ActivationFunction { get; init; }

    public int HeadDim => HiddenSize / Heads;

    public static BertConfig Load(string modelDir)
    {
        string path = Path.Combine(modelDir, "config.json");
        if (!File.Exists(path)) throw new ModelFormatException($"{modelDir}: missing config.json (is this a Hugging Face model folder?)");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return Parse(doc.RootElement, path);
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException($"{path}: invalid JSON: {ex.Message}", ex);
        }
    }

    internal static BertConfig Parse(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{path}: expected a JSON object");
        string modelType = String(root, "model_type", path) ?? throw new ModelFormatException($"{path}: missing field \"model_type\" (expected \"bert\")");
        if (modelType != "bert")
            throw new ModelFormatException($"{path}: unsupported model_type \"{modelType}\" (Funnel runs BERT models: model_type \"bert\")");
        var arch = BertArchitecture.BertModel;
        if (root.TryGetProperty("architectures", out JsonElement archs) && archs.ValueKind == JsonValueKind.Array && archs.GetArrayLength() > 0)
        {
            string name = archs[0].GetString() ?? "";
            arch = name switch
            {
                "BertModel" => BertArchitecture.BertModel,
                "BertForSequenceClassification" => BertArchitecture.BertForSequenceClassification,
                _ => throw new ModelFormatException($"{path}: unsupported architecture \"{name}\" (expected BertModel or BertForSequenceClassification)"),
            };
        }
        string act = String(root, "hidden_act", path) ?? "gelu";
        if (act != "gelu") throw new ModelFormatException($"{path}: unsupported hidden_act \"{act}\" (expected \"gelu\", the exact erf GELU)");
        string posType = String(root, "position_embedding_type", path) ?? "absolute";
        if (posType != "absolute") throw new ModelFormatException($"{path}: unsupported position_embedding_type \"{posType}\" (expected \"absolute\")");

        int numLabels = root.TryGetProperty("id2label", out JsonElement labels) && labels.ValueKind == JsonValueKind.Object
            ? labels.EnumerateObject().Count()
            : root.TryGetProperty("num_labels", out JsonElement nl) && nl.ValueKind == JsonValueKind.Number ? nl.GetInt32() : 1;
        string? activation = String(root, "sbert_ce_default_activation_function", path);
        if (root.TryGetProperty("sentence_transformers", out JsonElement st) && st.ValueKind == JsonValueKind.Object)
            activation = String(st, "activation_fn", path) ?? activation;

        var config = new BertConfig
        {
            Architecture = arch,
            VocabSize = Int(root, "vocab_size", path),
            HiddenSize = Int(root, "hidden_size", path),
            Layers = Int(root, "num_hidden_layers", path),
            Heads = Int(root, "num_attention_heads", path),
            IntermediateSize = Int(root, "intermediate_size", path),
            MaxPositionEmbeddings = Int(root, "max_position_embeddings", path),
            TypeVocabSize = Int(root, "type_vocab_size", path),
            LayerNormEps = root.TryGetProperty("layer_norm_eps", out JsonElement eps) && eps.ValueKind == JsonValueKind.Number ? eps.GetSingle() : 1e-12f,
            NumLabels = numLabels,
            ActivationFunction = activation,
        };
        if (config.HiddenSize % config.Heads != 0)
            throw new ModelFormatException($"{path}: hidden_size {config.HiddenSize} is not a multiple of num_attention_heads {config.Heads}");
        return config;
    }

    private static string? String(JsonElement o, string name, string path)
    {
        if (!o.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw new ModelFormatException($"{path}: field \"{name}\" must be a string");
        return v.GetString();
    }

    private static int Int(JsonElement o, string name, string path)
    {
        if (!o.TryGetProperty(name, out JsonElement v)) throw new ModelFormatException($"{path}: missing field \"{name}\"");
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i <= 0)
            throw new ModelFormatException($"{path}: field \"{name}\" must be a positive integer, got {v.GetRawText()}");
        return i;
    }
}
