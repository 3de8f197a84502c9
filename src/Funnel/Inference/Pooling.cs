using System.Numerics.Tensors;
using System.Text.Json;

namespace Funnel.Inference;

/// <summary>sentence-transformers pooling modes; several set at once are concatenated in this
/// order (cls, max, mean, mean_sqrt_len), as sentence-transformers does.</summary>
[Flags]
public enum PoolingMode
{
    Cls = 1,
    Max = 2,
    Mean = 4,
    MeanSqrtLen = 8,
}

/// <summary>Reduces a sequence's last hidden states [length × hidden] to one vector.</summary>
internal static class Pooling
{
    private static readonly PoolingMode[] Order = [PoolingMode.Cls, PoolingMode.Max, PoolingMode.Mean, PoolingMode.MeanSqrtLen];

    public static int Dimension(PoolingMode mode, int hidden) => Order.Count(m => mode.HasFlag(m)) * hidden;

    public static string Describe(PoolingMode mode)
        => string.Join("+", Order.Where(m => mode.HasFlag(m)).Select(m => m switch
        {
            PoolingMode.Cls => "cls",
            PoolingMode.Max => "max",
            PoolingMode.Mean => "mean",
            _ => "mean_sqrt_len",
        }));

    /// <summary>Pools <paramref name="hidden"/> ([length × hiddenSize], every row a real token) into
    /// <paramref name="output"/>, then L2-normalises when <paramref name="normalize"/>.</summary>
    public static void Pool(ReadOnlySpan<float> hidden, int length, int hiddenSize, PoolingMode mode, bool normalize, Span<float> output)
    {
        int at = 0;
        foreach (PoolingMode m in Order)
        {
            if (!mode.HasFlag(m)) continue;
            Span<float> dst = output.Slice(at, hiddenSize);
            at += hiddenSize;
            if (m == PoolingMode.Cls)
            {
                hidden[..hiddenSize].CopyTo(dst);
                continue;
            }
            hidden[..hiddenSize].CopyTo(dst);
            for (int t = 1; t < length; t++)
            {
                ReadOnlySpan<float> row = hidden.Slice(t * hiddenSize, hiddenSize);
                if (m == PoolingMode.Max) TensorPrimitives.Max(dst, row, dst);
                else TensorPrimitives.Add(dst, row, dst);
            }
            if (m == PoolingMode.Mean) TensorPrimitives.Divide(dst, length, dst);
            else if (m == PoolingMode.MeanSqrtLen) TensorPrimitives.Divide(dst, MathF.Sqrt(length), dst);
        }
        if (normalize) Numerics.VectorMath.Normalize(output); // the Normalize module
    }

    /// <summary>Reads <c>1_Pooling/config.json</c>-style settings.</summary>
    public static PoolingMode Parse(JsonElement root, string path)
    {
        PoolingMode mode = 0;
        foreach (JsonProperty p in root.EnumerateObject())
        {
            if (!p.Name.StartsWith("pooling_mode_", StringComparison.Ordinal) || p.Value.ValueKind != JsonValueKind.True) continue;
            mode |= p.Name switch
            {
                "pooling_mode_cls_token" => PoolingMode.Cls,
                "pooling_mode_max_tokens" => PoolingMode.Max,
                "pooling_mode_mean_tokens" => PoolingMode.Mean,
                "pooling_mode_mean_sqrt_len_tokens" => PoolingMode.MeanSqrtLen,
                _ => throw new ModelFormatException($"{path}: unsupported pooling \"{p.Name}\" (supported: cls_token, max_tokens, mean_tokens, mean_sqrt_len_tokens)"),
            };
        }
        if (mode == 0) throw new ModelFormatException($"{path}: no pooling mode is enabled (set one of pooling_mode_mean_tokens, _cls_token, _max_tokens)");
        return mode;
    }
}
