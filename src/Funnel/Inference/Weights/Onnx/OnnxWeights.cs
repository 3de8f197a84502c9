using System.Buffers;
using System.Runtime.CompilerServices;

namespace Funnel.Inference.Weights.Onnx;

/// <summary>
/// The weights of a BERT ONNX export (see <see cref="BertGraph"/> for how they are named and what is
/// refused), read as fp32 in Hugging Face layout: MatMul weights stored [in, out] are transposed back to
/// [out, in], quantized weights are dequantized.
/// </summary>
internal sealed class OnnxWeights : IWeightSource
{
    private readonly OnnxModel _model;
    private readonly IReadOnlyDictionary<string, MappedTensor> _tensors;

    public IReadOnlyList<string> Paths => _model.Files;

    private OnnxWeights(OnnxModel model, IReadOnlyDictionary<string, MappedTensor> tensors)
    {
        _model = model;
        _tensors = tensors;
    }

    public static OnnxWeights Open(string path, BertConfig config)
    {
        OnnxModel model = OnnxModel.Open(path);
        try
        {
            return new OnnxWeights(model, BertGraph.Map(model, config));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public void Read(string name, int[] shape, Span<float> destination)
    {
        if (!_tensors.TryGetValue(BertTensors.Unprefixed(name), out MappedTensor? t))
            throw new ModelFormatException($"{_model.Path}: missing tensor '{name}' (no initializer of the graph maps to it, with or without the '{BertTensors.Prefix}' prefix)");
        if (!t.Shape.SequenceEqual(shape.Select(d => (long)d)))
            throw new ModelFormatException($"{_model.Path}: tensor '{t.Name}' ({t.Origin}) has shape {t.ShapeText}, expected [{string.Join(", ", shape)}]");
        if (destination.Length != t.Stored.ElementCount)
            throw new ArgumentException($"destination holds {destination.Length} values, tensor '{name}' has {t.Stored.ElementCount}", nameof(destination));
        if (!t.Transposed)
        {
            ReadStored(t, destination);
        }
        else
        {
            float[] stored = ArrayPool<float>.Shared.Rent(destination.Length);
            try
            {
                ReadStored(t, stored.AsSpan(0, destination.Length));
                Transpose(stored.AsSpan(0, destination.Length), (int)t.Stored.Dims[0], (int)t.Stored.Dims[1], destination);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(stored);
            }
        }
        TensorDTypes.ThrowIfNotFinite(destination, _model.Path, $"'{t.Name}' ({t.Origin})");
    }

    public bool Contains(string name) => _tensors.ContainsKey(BertTensors.Unprefixed(name));

    /// <summary>The stored values as fp32, dequantized: (q − zero point) × scale, computed in fp32.</summary>
    private void ReadStored(MappedTensor t, Span<float> values)
    {
        _model.ReadFloat32(t.Stored, values);
        if (t.Dequantization is not { } q) return;
        float[] scale = new float[q.Scale.ElementCount], zero = new float[scale.Length];
        _model.ReadFloat32(q.Scale, scale);
        if (q.ZeroPoint is not null) _model.ReadFloat32(q.ZeroPoint, zero);
        int cols = t.Stored.Dims.Length == 2 ? (int)t.Stored.Dims[1] : 1;
        for (int i = 0; i < values.Length; i++)
        {
            int k = q.Axis switch { -1 => 0, 0 => i / cols, _ => i % cols };
            values[i] = (values[i] - zero[k]) * scale[k];
        }
    }

    /// <summary>[rows × cols] → [cols × rows], in tiles that stay in cache. Runs a few dozen times, at load:
    /// compiled optimized at once rather than first as tier-0 code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose(ReadOnlySpan<float> source, int rows, int cols, Span<float> destination)
    {
        const int Tile = 32;
        for (int r0 = 0; r0 < rows; r0 += Tile)
            for (int c0 = 0; c0 < cols; c0 += Tile)
                for (int r = r0; r < Math.Min(r0 + Tile, rows); r++)
                    for (int c = c0; c < Math.Min(c0 + Tile, cols); c++)
                        destination[c * rows + r] = source[r * cols + c];
    }

    public void Dispose() => _model.Dispose();
}
