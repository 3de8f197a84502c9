using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Funnel.Inference.Weights;

/// <summary>The safetensors element types the loader converts to fp32.</summary>
public enum TensorDType
{
    F32,
    F16,
    BF16,
}

internal static class TensorDTypes
{
    public static int Size(TensorDType t) => t == TensorDType.F32 ? 4 : 2;

    public static string Name(TensorDType t) => t switch
    {
        TensorDType.F32 => "F32",
        TensorDType.F16 => "F16",
        _ => "BF16",
    };

    public static bool TryParse(string name, out TensorDType t)
    {
        switch (name)
        {
            case "F32": t = TensorDType.F32; return true;
            case "F16": t = TensorDType.F16; return true;
            case "BF16": t = TensorDType.BF16; return true;
            default: t = default; return false;
        }
    }

    /// <summary>float32 → bfloat16 bits, round to nearest even (NaN stays NaN).</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
    }

    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Little-endian <paramref name="source"/> bytes of type <paramref name="dtype"/> → fp32.</summary>
    public static void ToFloat32(ReadOnlySpan<byte> source, TensorDType dtype, Span<float> destination)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("weight files are little-endian; this machine is not");
        switch (dtype)
        {
            case TensorDType.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case TensorDType.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
                break;
            default:
                ReadOnlySpan<ushort> b = MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < b.Length; i++) destination[i] = FromBFloat16(b[i]);
                break;
        }
    }

    /// <summary>
    /// Refuses weights holding NaN or ±Infinity: a model with them gives NaN vectors for every input, which
    /// should fail at load, naming the tensor, rather than at search time. A vectorized scan, cheap next to the load.
    /// </summary>
    /// <param name="tensor">The tensor as the message names it, e.g. <c>'embeddings.LayerNorm.weight'</c>.</param>
    public static void ThrowIfNotFinite(ReadOnlySpan<float> values, string file, string tensor)
    {
        if (TensorPrimitives.IsFiniteAll(values)) return;
        int i = 0;
        while (float.IsFinite(values[i])) i++;
        string what = float.IsNaN(values[i]) ? "NaN" : values[i] > 0 ? "+Infinity" : "-Infinity";
        throw new ModelFormatException($"{file}: tensor {tensor} holds {what} at element {i} (a model with non-finite weights gives NaN outputs)");
    }
}
