using System.Text.Json;

namespace Funnel.Inference.Weights;

/// <summary>
/// <c>model.safetensors.index.json</c>, the table of contents of a sharded checkpoint: which shard file holds each tensor.
/// Read by the loader (<see cref="WeightFiles"/>) and by the hub download, which fetches the shards it names.
/// </summary>
internal static class ShardIndex
{
    public const string FileName = "model.safetensors.index.json";

    /// <summary>
    /// The shard files named by the index at <paramref name="indexPath"/>, sorted, each once. Each must be a <c>.safetensors</c>
    /// file name in the index's own folder (transformers writes them there), so that a downloaded index cannot point outside
    /// the model's folder; anything else is a <see cref="ModelFormatException"/> naming the entry.
    /// </summary>
    public static IReadOnlyList<string> ShardNames(string indexPath)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!document.RootElement.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException($"{indexPath}: expected an object field \"weight_map\" (tensor name → shard file)");
            var shards = new SortedSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty tensor in map.EnumerateObject())
            {
                string? shard = tensor.Value.ValueKind == JsonValueKind.String ? tensor.Value.GetString() : null;
                if (string.IsNullOrEmpty(shard) || shard.IndexOfAny(['/', '\\', ':']) >= 0 || shard is "." or ".."
                    || !shard.EndsWith(".safetensors", StringComparison.Ordinal))
                    throw new ModelFormatException($"{indexPath}: weight_map[\"{tensor.Name}\"] must be a .safetensors file name in the same folder, got {tensor.Value}");
                shards.Add(shard);
            }
            if (shards.Count == 0) throw new ModelFormatException($"{indexPath}: weight_map is empty");
            return [.. shards];
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{indexPath}: invalid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
    }
}
