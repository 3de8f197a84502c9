using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Funnel.Inference;
using Funnel.IO;

namespace Funnel.Training.Checkpoints;

/// <summary>
/// Writes a trained model as a folder that both Funnel and sentence-transformers load: <c>model.safetensors</c>
/// (F32, Hugging Face tensor names), <c>config.json</c>, the tokenizer files, and for a bi-encoder the
/// sentence-transformers modules (<c>modules.json</c>, <c>1_Pooling/config.json</c>, <c>sentence_bert_config.json</c>,
/// <c>config_sentence_transformers.json</c>). A cross-encoder is a BertForSequenceClassification with one label whose
/// config records its activation (sentence-transformers v4+'s <c>sentence_transformers.activation_fn</c> and the older
/// <c>sbert_ce_default_activation_function</c>): a sigmoid, sentence-transformers' default for one label.
/// </summary>
internal static class ModelExport
{
    public const string SentenceTransformersVersion = "5.1.0";
    private const string Sigmoid = "torch.nn.modules.activation.Sigmoid";
    private static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"];
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static void Write(TrainingModel model, string baseDir, string outDir)
    {
        Directory.CreateDirectory(outDir);
        SafeTensorsWriter.Write(Path.Combine(outDir, "model.safetensors"), Tensors(model));
        foreach (string name in TokenizerFiles)
        {
            string source = Path.Combine(baseDir, name);
            if (!File.Exists(source)) continue;
            if (name == "tokenizer_config.json" && model.Kind == ModelKind.CrossEncoder)
            {
                // The pair length trained at is the length it should score at.
                JsonObject tokenizerConfig = ReadObject(source);
                tokenizerConfig["model_max_length"] = model.MaxLength;
                WriteText(Path.Combine(outDir, name), tokenizerConfig.ToJsonString(Indented));
                continue;
            }
            WriteBytes(Path.Combine(outDir, name), File.ReadAllBytes(source));
        }
        if (model.Kind == ModelKind.BiEncoder) WriteSentenceTransformerModules(model, baseDir, outDir);
        WriteText(Path.Combine(outDir, "config.json"), Config(model, baseDir).ToJsonString(Indented));
    }

    /// <summary>The checkpoint's tensors in Hugging Face order and names (the fused QKV split back into query, key, value).</summary>
    public static List<NamedTensor> Tensors(TrainingModel model)
    {
        bool ce = model.Kind == ModelKind.CrossEncoder;
        string prefix = ce ? "bert." : "";
        var byName = model.Parameters.ToDictionary(p => p.Name);
        var tensors = new List<NamedTensor>();
        foreach (var (name, shape) in BertTensors.Specs(model.Config, ce))
        {
            string bare = name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : name;
            if (byName.TryGetValue(bare, out Parameter? p))
            {
                tensors.Add(new NamedTensor(name, shape, p.Value));
                continue;
            }
            if (bare.StartsWith("pooler.", StringComparison.Ordinal))
            {
                if (model.FrozenPooler is not { } pooler) continue; // a base without a pooler keeps none
                tensors.Add(new NamedTensor(name, shape, bare.EndsWith(".weight", StringComparison.Ordinal) ? pooler.Weight : pooler.Bias));
                continue;
            }
            tensors.Add(new NamedTensor(name, shape, QkvPart(byName, bare)));
        }
        return tensors;
    }

    private static ReadOnlyMemory<float> QkvPart(Dictionary<string, Parameter> byName, string name)
    {
        string[] parts = ["query", "key", "value"];
        foreach (string part in parts)
        {
            string marker = $".attention.self.{part}.";
            int at = name.IndexOf(marker, StringComparison.Ordinal);
            if (at < 0) continue;
            Parameter fused = byName[$"{name[..at]}.{TrainableBert.QkvName}.{name[(at + marker.Length)..]}"];
            int third = fused.Value.Length / 3;
            return fused.Value.AsMemory(Array.IndexOf(parts, part) * third, third);
        }
        throw new InvalidOperationException($"no trained tensor for '{name}'");
    }

    private static JsonObject Config(TrainingModel model, string baseDir)
    {
        JsonObject config = ReadObject(Path.Combine(baseDir, "config.json"));
        foreach (string key in new[] { "id2label", "label2id", "num_labels", "sbert_ce_default_activation_function", "sentence_transformers", "_name_or_path" })
            config.Remove(key);
        config["torch_dtype"] = "float32";
        if (model.Kind == ModelKind.BiEncoder)
        {
            config["architectures"] = new JsonArray("BertModel");
            return config;
        }
        config["architectures"] = new JsonArray("BertForSequenceClassification");
        config["id2label"] = new JsonObject { ["0"] = "LABEL_0" };
        config["label2id"] = new JsonObject { ["LABEL_0"] = 0 };
        config["sbert_ce_default_activation_function"] = Sigmoid;
        config["sentence_transformers"] = new JsonObject { ["activation_fn"] = Sigmoid, ["version"] = SentenceTransformersVersion };
        return config;
    }

    private static void WriteSentenceTransformerModules(TrainingModel model, string baseDir, string outDir)
    {
        PoolingHead pooling = model.Pooling!;
        var modules = new JsonArray
        {
            new JsonObject { ["idx"] = 0, ["name"] = "0", ["path"] = "", ["type"] = "sentence_transformers.models.Transformer" },
            new JsonObject { ["idx"] = 1, ["name"] = "1", ["path"] = "1_Pooling", ["type"] = "sentence_transformers.models.Pooling" },
        };
        if (pooling.Normalize) modules.Add(new JsonObject { ["idx"] = 2, ["name"] = "2", ["path"] = "2_Normalize", ["type"] = "sentence_transformers.models.Normalize" });
        WriteText(Path.Combine(outDir, "modules.json"), modules.ToJsonString(Indented));
        var poolingConfig = new JsonObject
        {
            ["word_embedding_dimension"] = model.Config.HiddenSize,
            ["pooling_mode_cls_token"] = pooling.Mode.HasFlag(PoolingMode.Cls),
            ["pooling_mode_mean_tokens"] = pooling.Mode.HasFlag(PoolingMode.Mean),
            ["pooling_mode_max_tokens"] = pooling.Mode.HasFlag(PoolingMode.Max),
            ["pooling_mode_mean_sqrt_len_tokens"] = pooling.Mode.HasFlag(PoolingMode.MeanSqrtLen),
            ["pooling_mode_weightedmean_tokens"] = false,
            ["pooling_mode_lasttoken"] = false,
            ["include_prompt"] = true,
        };
        Directory.CreateDirectory(Path.Combine(outDir, "1_Pooling"));
        WriteText(Path.Combine(outDir, "1_Pooling", "config.json"), poolingConfig.ToJsonString(Indented));
        WriteText(Path.Combine(outDir, "sentence_bert_config.json"),
            new JsonObject { ["max_seq_length"] = model.MaxLength, ["do_lower_case"] = false }.ToJsonString(Indented));
        string stConfig = Path.Combine(baseDir, "config_sentence_transformers.json");
        JsonObject st = File.Exists(stConfig) ? ReadObject(stConfig) : new JsonObject { ["prompts"] = new JsonObject(), ["default_prompt_name"] = null, ["similarity_fn_name"] = "cosine" };
        st["__version__"] = new JsonObject { ["sentence_transformers"] = SentenceTransformersVersion };
        WriteText(Path.Combine(outDir, "config_sentence_transformers.json"), st.ToJsonString(Indented));
    }

    private static JsonObject ReadObject(string path) =>
        JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ModelFormatException($"{path}: expected a JSON object");

    private static void WriteText(string path, string text) => WriteBytes(path, Encoding.UTF8.GetBytes(text));

    private static void WriteBytes(string path, byte[] bytes) => DurableFile.WriteAtomic(path, s => s.Write(bytes));
}
