using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Funnel.Inference.Weights;
using Funnel.IO;

namespace Funnel.Inference;

/// <summary>The encoder shape of a random checkpoint.</summary>
public enum CheckpointArchitecture
{
    /// <summary>MiniLM-L6: hidden 384, 6 layers, 12 heads, intermediate 1536 (as all-MiniLM-L6-v2).</summary>
    MiniLmL6,
    /// <summary>A tiny test model: hidden 32, 2 layers, 4 heads, intermediate 64, with the real vocabulary.</summary>
    Small,
}

/// <summary>What <see cref="SeededCheckpoint.Write"/> makes.</summary>
public sealed record SeededCheckpointOptions
{
    public CheckpointArchitecture Architecture { get; init; } = CheckpointArchitecture.MiniLmL6;

    /// <summary>A BertForSequenceClassification reranker with one label (raw logits), instead of a bi-encoder.</summary>
    public bool CrossEncoder { get; init; }

    public TensorDType DType { get; init; } = TensorDType.F32;

    /// <summary>Bi-encoders: the pooling to configure; null keeps the like-model's (mean if it has none).</summary>
    public PoolingMode? Pooling { get; init; }

    /// <summary>More than 1 writes <c>model-0000i-of-0000n.safetensors</c> shards and an index.</summary>
    public int Shards { get; init; } = 1;
}

/// <summary>
/// Deterministic random-weight checkpoints of real BERT architectures, for tests, benchmarks and
/// demos where no pretrained weights exist. Every weight comes from a counter-based hash of
/// (seed, tensor name, element index), specified in tools/reference/README.md, which the PyTorch
/// reference (tools/reference/bert_reference.py) implements bit for bit: the same seed gives
/// byte-identical files in both.
/// </summary>
public static class SeededCheckpoint
{
    private const ulong Golden = 0x9E3779B97F4A7C15;

    /// <summary>
    /// Makes a model folder at <paramref name="outputDir"/>: the tokenizer and sentence-transformers
    /// files of <paramref name="likeModelDir"/>, a config.json of the chosen architecture, and
    /// random weights from <paramref name="seed"/>. Returns the weight files written.
    /// </summary>
    public static IReadOnlyList<string> Write(string outputDir, string likeModelDir, int seed, SeededCheckpointOptions? options = null)
    {
        options ??= new SeededCheckpointOptions();
        if (options.Shards < 1) throw new ArgumentOutOfRangeException(nameof(options.Shards), options.Shards, "Shards must be at least 1");
        if (File.Exists(outputDir)) throw new ArgumentException($"'{outputDir}' is a file; the output must be a folder", nameof(outputDir));
        string likeConfigPath = Path.Combine(likeModelDir, "config.json");
        if (!File.Exists(likeConfigPath)) throw new ModelFormatException($"{likeModelDir}: missing config.json (--like must be a Hugging Face BERT model folder)");
        if (Path.GetFullPath(outputDir) == Path.GetFullPath(likeModelDir)) throw new ArgumentException("the output folder must differ from the like-model folder", nameof(outputDir));

        JsonObject config = ModelConfig(likeConfigPath, options);
        BertConfig bert = BertConfig.Parse(JsonDocument.Parse(config.ToJsonString()).RootElement, likeConfigPath);
        int tensors = BertTensors.Specs(bert, options.CrossEncoder).Count;
        if (options.Shards > tensors)
            throw new ArgumentOutOfRangeException(nameof(options.Shards), options.Shards, $"Shards must be at most the model's {tensors} tensors (every shard holds at least one)");
        Directory.CreateDirectory(outputDir);
        CopySupportFiles(likeModelDir, outputDir);
        WriteText(Path.Combine(outputDir, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (!options.CrossEncoder) WriteSentenceTransformerFiles(likeModelDir, outputDir, bert.HiddenSize, options.Pooling);
        return WriteWeights(outputDir, bert, options, (ulong)(uint)seed);
    }

    private static JsonObject ModelConfig(string likeConfigPath, SeededCheckpointOptions options)
    {
        JsonObject config = JsonNode.Parse(File.ReadAllText(likeConfigPath)) as JsonObject
                            ?? throw new ModelFormatException($"{likeConfigPath}: expected a JSON object");
        (int h, int layers, int heads, int inter) = options.Architecture == CheckpointArchitecture.Small ? (32, 2, 4, 64) : (384, 6, 12, 1536);
        config["hidden_size"] = h;
        config["num_hidden_layers"] = layers;
        config["num_attention_heads"] = heads;
        config["intermediate_size"] = inter;
        config["torch_dtype"] = options.DType switch { TensorDType.F16 => "float16", TensorDType.BF16 => "bfloat16", _ => "float32" };
        if (options.CrossEncoder)
        {
            config["architectures"] = new JsonArray("BertForSequenceClassification");
            config["id2label"] = new JsonObject { ["0"] = "LABEL_0" };
            config["label2id"] = new JsonObject { ["LABEL_0"] = 0 };
            config["sbert_ce_default_activation_function"] ??= "torch.nn.modules.linear.Identity";
        }
        else
        {
            config["architectures"] = new JsonArray("BertModel");
            foreach (string key in new[] { "id2label", "label2id", "num_labels", "sbert_ce_default_activation_function", "sentence_transformers" })
                config.Remove(key);
        }
        return config;
    }

    /// <summary>Copies tokenizer files and sentence-transformers module folders, never weights.</summary>
    private static void CopySupportFiles(string likeDir, string outDir)
    {
        string[] weightSuffixes = [".safetensors", ".bin", ".onnx", ".h5", ".msgpack", ".ot", ".index.json"];
        foreach (string file in Directory.EnumerateFiles(likeDir))
        {
            string name = Path.GetFileName(file);
            if (name == "config.json" || weightSuffixes.Any(s => name.EndsWith(s, StringComparison.OrdinalIgnoreCase))) continue;
            File.Copy(file, Path.Combine(outDir, name), overwrite: true);
        }
    }

    private static void WriteSentenceTransformerFiles(string likeDir, string outDir, int hidden, PoolingMode? pooling)
    {
        PoolingMode mode = pooling ?? ExistingPooling(likeDir) ?? PoolingMode.Mean;
        if (!File.Exists(Path.Combine(likeDir, "modules.json")))
        {
            WriteText(Path.Combine(outDir, "modules.json"), """
                [
                  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                  {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
                ]
                """);
        }
        var poolConfig = new JsonObject
        {
            ["word_embedding_dimension"] = hidden,
            ["pooling_mode_cls_token"] = mode.HasFlag(PoolingMode.Cls),
            ["pooling_mode_mean_tokens"] = mode.HasFlag(PoolingMode.Mean),
            ["pooling_mode_max_tokens"] = mode.HasFlag(PoolingMode.Max),
            ["pooling_mode_mean_sqrt_len_tokens"] = mode.HasFlag(PoolingMode.MeanSqrtLen),
        };
        Directory.CreateDirectory(Path.Combine(outDir, "1_Pooling"));
        WriteText(Path.Combine(outDir, "1_Pooling", "config.json"), poolConfig.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static PoolingMode? ExistingPooling(string likeDir)
    {
        string path = Path.Combine(likeDir, "1_Pooling", "config.json");
        if (!File.Exists(path)) return null;
        using JsonDocument doc = SentenceTransformerConfig.ReadJson(path);
        return Inference.Pooling.Parse(doc.RootElement, path);
    }

    /// <summary>(offset, scale) of a tensor's uniform distribution, chosen so outputs are far from
    /// degenerate: unit-variance linear maps, sharper attention (query/key gain 1.5) and logits
    /// spread over several units (classifier gain 4).</summary>
    internal static (double Offset, double Scale) InitOf(string name, int[] shape)
    {
        if (name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) return (1.0, 0.2);
        if (name.EndsWith("word_embeddings.weight", StringComparison.Ordinal)) return (0.0, 1.0);
        if (name.EndsWith("position_embeddings.weight", StringComparison.Ordinal) || name.EndsWith("token_type_embeddings.weight", StringComparison.Ordinal)) return (0.0, 0.5);
        if (shape.Length == 2)
        {
            double gain = name.EndsWith("query.weight", StringComparison.Ordinal) || name.EndsWith("key.weight", StringComparison.Ordinal) ? 1.5
                : name.EndsWith("classifier.weight", StringComparison.Ordinal) ? 4.0 : 1.0;
            return (0.0, gain * Math.Sqrt(3.0 / shape[1]));
        }
        return (0.0, 0.1);
    }

    internal static ulong Mix64(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    internal static ulong Fnv1a64(string text)
    {
        ulong h = 0xCBF29CE484222325;
        foreach (byte b in Encoding.UTF8.GetBytes(text)) h = (h ^ b) * 0x100000001B3;
        return h;
    }

    /// <summary>Element i = (float)(offset + scale·x_i), x_i = (k_i − 2²³)/2²³ with k_i the top 24 bits of
    /// Mix64(stream + (i+1)·φ), stream = Mix64(seed·φ + FNV-1a(name)), φ = 0x9E3779B97F4A7C15.</summary>
    internal static void Values(ulong seed, string name, double offset, double scale, Span<float> destination)
    {
        ulong stream = Mix64(unchecked(seed * Golden + Fnv1a64(name)));
        for (int i = 0; i < destination.Length; i++)
        {
            ulong z = Mix64(unchecked(stream + (ulong)(i + 1) * Golden));
            double x = ((double)(z >> 40) - 8388608.0) / 8388608.0;
            double scaled = scale * x;
            destination[i] = (float)(offset + scaled);
        }
    }

    private static IReadOnlyList<string> WriteWeights(string outDir, BertConfig config, SeededCheckpointOptions options, ulong seed)
    {
        foreach (string old in Directory.EnumerateFiles(outDir, "model*.safetensors*")) File.Delete(old);
        var specs = BertTensors.Specs(config, options.CrossEncoder);
        if (options.Shards == 1)
        {
            string path = Path.Combine(outDir, WeightFiles.SingleFile);
            WriteSafeTensors(path, specs, options.DType, seed);
            return [path];
        }
        var written = new List<string>();
        var map = new StringBuilder();
        long total = 0;
        for (int s = 0; s < options.Shards; s++)
        {
            // ⌈n/S⌉ tensors a shard, as the reference script splits them; where that would leave the last shards empty
            // (S close to n), shard s holds tensors [s·n/S, (s+1)·n/S) instead, so that every shard holds one at least.
            int per = (specs.Count + options.Shards - 1) / options.Shards;
            bool even = (long)(options.Shards - 1) * per < specs.Count;
            int from = even ? s * per : (int)((long)s * specs.Count / options.Shards);
            int to = even ? Math.Min(specs.Count, from + per) : (int)((long)(s + 1) * specs.Count / options.Shards);
            var chunk = specs.Skip(from).Take(to - from).ToList();
            string file = $"model-{s + 1:D5}-of-{options.Shards:D5}.safetensors";
            string path = Path.Combine(outDir, file);
            total += WriteSafeTensors(path, chunk, options.DType, seed);
            written.Add(path);
            foreach (var (name, _) in chunk) map.Append(map.Length == 0 ? "" : ",").Append($"\"{name}\":\"{file}\"");
        }
        string index = Path.Combine(outDir, WeightFiles.IndexFile);
        WriteText(index, $"{{\"metadata\":{{\"total_size\":{total}}},\"weight_map\":{{{map}}}}}");
        written.Add(index);
        return written;
    }

    /// <summary>Writes one safetensors file: compact JSON header in tensor order, space-padded so the
    /// data starts 8-byte aligned. Returns the data size in bytes.</summary>
    private static long WriteSafeTensors(string path, List<(string Name, int[] Shape)> specs, TensorDType dtype, ulong seed)
    {
        int size = TensorDTypes.Size(dtype);
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (var (name, shape) in specs)
        {
            long bytes = shape.Aggregate(1L, (a, d) => a * d) * size;
            header.Append(CultureInfo.InvariantCulture, $",\"{name}\":{{\"dtype\":\"{TensorDTypes.Name(dtype)}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        header.Append('}');
        byte[] headerBytes = Encoding.UTF8.GetBytes(header.ToString());
        int pad = (8 - (8 + headerBytes.Length) % 8) % 8;
        DurableFile.WriteAtomic(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)(headerBytes.Length + pad));
            stream.Write(len);
            stream.Write(headerBytes);
            for (int i = 0; i < pad; i++) stream.WriteByte((byte)' ');
            foreach (var (name, shape) in specs)
            {
                var (off, scale) = InitOf(name, shape);
                float[] values = new float[shape.Aggregate(1, (a, d) => a * d)];
                Values(seed, name, off, scale, values);
                WriteValues(stream, values, dtype);
            }
        });
        return offset;
    }

    private static void WriteValues(Stream stream, float[] values, TensorDType dtype)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors writing assumes a little-endian machine");
        switch (dtype)
        {
            case TensorDType.F32:
                stream.Write(MemoryMarshal.AsBytes(values.AsSpan()));
                break;
            case TensorDType.F16:
                stream.Write(MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()));
                break;
            default:
                stream.Write(MemoryMarshal.AsBytes(values.Select(TensorDTypes.ToBFloat16).ToArray().AsSpan()));
                break;
        }
    }

    private static void WriteText(string path, string text) => DurableFile.WriteAtomic(path, s => s.Write(Encoding.UTF8.GetBytes(text)));
}
