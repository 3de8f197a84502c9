using Funnel.Inference.Weights;

namespace Funnel.Inference.Hub;

/// <summary>
/// The files of a Hub repository that a sentence-transformers bi-encoder or a cross-encoder needs: configuration,
/// tokenizer, pooling, and weights: safetensors (one file, or an index plus its shards) when the repository has them,
/// else the fp32 ONNX export (<c>model.onnx</c> or optimum's <c>onnx/model.onnx</c>, with its external data file).
/// Never .bin, and never the other ONNX variants (optimized, quantized) that such repositories also hold.
/// </summary>
internal static class ModelFiles
{
    public const string Weights = "model.safetensors";
    public const string WeightsIndex = ShardIndex.FileName;

    /// <summary>The ONNX exports Funnel loads when there are no safetensors, in order of preference (as <see cref="ModelWeights"/>).</summary>
    public static readonly IReadOnlyList<string> OnnxWeights = [ModelWeights.OnnxFile, ModelWeights.OnnxSubfolderFile];

    public static readonly IReadOnlyList<string> Configuration =
    [
        "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
        "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json",
    ];

    /// <summary>The files to fetch from a repository listing, weights last; throws when it has neither safetensors nor an ONNX export.</summary>
    public static IReadOnlyList<string> Select(IReadOnlyCollection<string> siblings, HubModelId id)
    {
        var selected = Configuration.Where(siblings.Contains).ToList();
        if (siblings.Contains(Weights)) selected.Add(Weights);
        else if (siblings.Contains(WeightsIndex)) selected.Add(WeightsIndex);
        else if (OnnxWeights.FirstOrDefault(siblings.Contains) is { } onnx)
            selected.AddRange([onnx, .. new[] { onnx + "_data", onnx + ".data" }.Where(siblings.Contains)]);
        else
        {
            string others = string.Join(", ", siblings.Where(IsOtherWeights).Order(StringComparer.Ordinal));
            throw new HubException(HubErrorKind.Unsupported,
                $"model {id} has no safetensors weights ({Weights} or {WeightsIndex}) and no ONNX export ({string.Join(" or ", OnnxWeights)})"
                + (others.Length > 0 ? $"; it has only {others}, which Funnel does not load" : "")
                + ". Pick a revision or model that ships safetensors or an ONNX export.");
        }
        return selected;
    }

    /// <summary>The shard files named by a <c>model.safetensors.index.json</c> (<see cref="ShardIndex"/>); an index the loader
    /// would refuse makes the repository one Funnel cannot use.</summary>
    public static IReadOnlyList<string> ShardsOf(string indexPath)
    {
        try
        {
            return ShardIndex.ShardNames(indexPath);
        }
        catch (ModelFormatException e)
        {
            throw new HubException(HubErrorKind.Unsupported, e.Message, e);
        }
    }

    /// <summary>
    /// What offline use needs at least: config, a tokenizer, and all weights. Used when the cache may have been
    /// filled by another tool that records nothing about absent files.
    /// </summary>
    public static bool HasModel(string folder) =>
        File.Exists(Path.Combine(folder, "config.json"))
        && (File.Exists(Path.Combine(folder, "tokenizer.json")) || File.Exists(Path.Combine(folder, "vocab.txt")))
        && HasWeights(folder);

    /// <summary>
    /// True when every configuration file is in <paramref name="snapshot"/> or recorded absent under
    /// <paramref name="absentFolder"/> (huggingface_hub's <c>.no_exist</c>), and the weights are complete.
    /// </summary>
    public static bool IsComplete(string snapshot, string absentFolder) =>
        Configuration.All(file => File.Exists(Path.Combine(snapshot, file)) || File.Exists(Path.Combine(absentFolder, file)))
        && HasModel(snapshot);

    /// <summary>A repository path that stays inside the folder it is joined to.</summary>
    public static bool IsSafeRelativePath(string path) =>
        path.Length > 0 && !Path.IsPathRooted(path) && !path.Contains('\\') && !path.Contains(':')
        && path.Split('/').All(segment => segment is not ("" or "." or ".."));

    private static bool HasWeights(string folder)
    {
        if (File.Exists(Path.Combine(folder, Weights)) || OnnxWeights.Any(onnx => File.Exists(Path.Combine(folder, onnx)))) return true;
        string index = Path.Combine(folder, WeightsIndex);
        if (!File.Exists(index)) return false;
        try
        {
            return ShardsOf(index).All(shard => File.Exists(Path.Combine(folder, shard)));
        }
        catch (HubException)
        {
            return false;
        }
    }

    private static bool IsOtherWeights(string file) =>
        !file.Contains('/') && (file.EndsWith(".bin", StringComparison.Ordinal) || file.EndsWith(".onnx", StringComparison.Ordinal)
            || file.EndsWith(".h5", StringComparison.Ordinal) || file.EndsWith(".msgpack", StringComparison.Ordinal)
            || file.EndsWith(".ckpt", StringComparison.Ordinal) || file.EndsWith(".pt", StringComparison.Ordinal));
}
