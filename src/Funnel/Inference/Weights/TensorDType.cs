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
}
