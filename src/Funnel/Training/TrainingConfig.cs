using System.Text.Json;
using Funnel.Inference;

namespace Funnel.Training;

/// <summary>The training-only fields of a BERT config.json (inference ignores them), with Hugging Face's defaults.</summary>
internal static class TrainingConfig
{
    public static DropoutSettings Dropouts(string modelDir)
    {
        using JsonDocument doc = Read(modelDir, out string path);
        float hidden = Probability(doc.RootElement, "hidden_dropout_prob", 0.1f, path);
        float attention = Probability(doc.RootElement, "attention_probs_dropout_prob", 0.1f, path);
        float classifier = Probability(doc.RootElement, "classifier_dropout", hidden, path);
        return new DropoutSettings(new Dropout(hidden), new Dropout(attention), new Dropout(classifier));
    }

    public static double InitializerRange(string modelDir)
    {
        using JsonDocument doc = Read(modelDir, out string path);
        if (!doc.RootElement.TryGetProperty("initializer_range", out JsonElement v) || v.ValueKind == JsonValueKind.Null) return 0.02;
        return v.ValueKind == JsonValueKind.Number && v.GetDouble() > 0
            ? v.GetDouble()
            : throw new ModelFormatException($"{path}: initializer_range must be a positive number, got {v.GetRawText()}");
    }

    private static JsonDocument Read(string modelDir, out string path)
    {
        path = Path.Combine(modelDir, "config.json");
        return SentenceTransformerConfig.ReadJson(path);
    }

    private static float Probability(JsonElement root, string name, float fallback, string path)
    {
        if (!root.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !(v.GetDouble() is >= 0 and < 1))
            throw new ModelFormatException($"{path}: {name} must be a probability in [0, 1), got {v.GetRawText()}");
        return v.GetSingle();
    }
}
