namespace Funnel.Inference.Kernels;

/// <summary>
/// The weight of a linear layer, W[N×K] in PyTorch's (out, in) layout, rearranged once at load
/// time into the order the matrix kernel reads it. Packing is the kernel's business: callers
/// only pack and pass it back.
/// </summary>
public sealed class PackedMatrix
{
    /// <summary>Output features (rows of W).</summary>
    public int N { get; }

    /// <summary>Input features (columns of W).</summary>
    public int K { get; }

    /// <summary>The packed data; its layout is private to <see cref="MatMul"/>.</summary>
    internal float[] Data { get; }

    internal PackedMatrix(int n, int k, float[] data)
    {
        N = n;
        K = k;
        Data = data;
    }

    /// <summary>Packs W given row-major as [n × k].</summary>
    public static PackedMatrix Pack(ReadOnlySpan<float> w, int n, int k) => MatMul.Pack(w, n, k);
}
