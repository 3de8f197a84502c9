using System.Text.Json;
using Funnel.Inference;
using Funnel.Inference.Weights;

namespace Funnel.Tests.Inference;

/// <summary>
/// The PyTorch reference outputs (Fixtures/reference/bert_reference.json, written by
/// tools/reference/bert_reference.py) and the seeded checkpoints they were computed on,
/// regenerated here by <see cref="SeededCheckpoint"/> into a temp folder once per test run.
/// </summary>
public sealed class ReferenceFixture : IDisposable
{
    public sealed record Variant(string Name, string Like, bool CrossEncoder, CheckpointArchitecture Arch, int Seed, TensorDType DType,
        string? Pooling, int Shards, Dictionary<string, string> Sha256, float[][]? Embeddings, float[]? Logits,
        Dictionary<int, float[][]>? HiddenStates, string Dir);

    private readonly string _root = Path.Combine(Path.GetTempPath(), "funnel-infer-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, Variant> _variants = new();
    private readonly Lock _lock = new();
    private readonly JsonElement _json;

    public string[] Texts { get; }
    public int[][] Ids { get; }
    public string Query { get; }
    public string[] Documents { get; }
    public int[][] PairIds { get; }
    public int[][] PairTypeIds { get; }

    public ReferenceFixture()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.Fixtures, "reference", "bert_reference.json")));
        _json = doc.RootElement.Clone();
        Texts = _json.GetProperty("texts").Deserialize<string[]>()!;
        Ids = _json.GetProperty("ids").Deserialize<int[][]>()!;
        Query = _json.GetProperty("query").GetString()!;
        Documents = _json.GetProperty("documents").Deserialize<string[]>()!;
        PairIds = _json.GetProperty("pair_ids").Deserialize<int[][]>()!;
        PairTypeIds = _json.GetProperty("pair_type_ids").Deserialize<int[][]>()!;
    }

    public IEnumerable<string> VariantNames => _json.GetProperty("variants").EnumerateObject().Select(p => p.Name);

    /// <summary>The variant's expected values, its checkpoint written on first use.</summary>
    public Variant Get(string name)
    {
        lock (_lock)
        {
            if (_variants.TryGetValue(name, out Variant? v)) return v;
            JsonElement e = _json.GetProperty("variants").GetProperty(name);
            string dir = Path.Combine(_root, name);
            v = new Variant(name, e.GetProperty("like").GetString()!, e.GetProperty("cross_encoder").GetBoolean(),
                e.GetProperty("arch").GetString() == "small" ? CheckpointArchitecture.Small : CheckpointArchitecture.MiniLmL6,
                e.GetProperty("seed").GetInt32(), Enum.Parse<TensorDType>(e.GetProperty("dtype").GetString()!),
                e.TryGetProperty("pooling", out JsonElement p) ? p.GetString() : null, e.GetProperty("shards").GetInt32(),
                e.GetProperty("sha256").Deserialize<Dictionary<string, string>>()!,
                e.TryGetProperty("embeddings", out JsonElement emb) ? emb.Deserialize<float[][]>() : null,
                e.TryGetProperty("logits", out JsonElement lg) ? lg.Deserialize<float[]>() : null,
                e.TryGetProperty("hidden_states", out JsonElement hs)
                    ? hs.EnumerateObject().ToDictionary(q => int.Parse(q.Name), q => q.Value.Deserialize<float[][]>()!) : null,
                dir);
            SeededCheckpoint.Write(dir, TestPaths.SharedModel(v.Like), v.Seed, Options(v));
            _variants[name] = v;
            return v;
        }
    }

    public static SeededCheckpointOptions Options(Variant v) => new()
    {
        Architecture = v.Arch,
        CrossEncoder = v.CrossEncoder,
        DType = v.DType,
        Shards = v.Shards,
        Pooling = v.Pooling?.Split('+').Aggregate((PoolingMode)0, (mode, name) => mode | name switch
        {
            "cls" => PoolingMode.Cls,
            "max" => PoolingMode.Max,
            "mean" => PoolingMode.Mean,
            "mean_sqrt_len" => PoolingMode.MeanSqrtLen,
            _ => throw new InvalidDataException($"unknown pooling '{name}' in the fixture"),
        }),
    };

    /// <summary>A fresh copy of a variant's folder that a test may damage.</summary>
    public string CopyOf(string name)
    {
        string src = Get(name).Dir, dst = Path.Combine(_root, "copy-" + Guid.NewGuid().ToString("N"));
        foreach (string file in Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(dst, Path.GetRelativePath(src, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return dst;
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class ReferenceCollection : ICollectionFixture<ReferenceFixture>
{
    public const string Name = "BERT reference";
}
