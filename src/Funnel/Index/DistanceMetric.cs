namespace Funnel.Index;

/// <summary>How two vectors are compared. Every index reports scores where higher is better.</summary>
public enum DistanceMetric
{
    /// <summary>Cosine similarity: vectors are L2-normalised at insert and query time, score = dot product in [-1, 1].</summary>
    Cosine = 0,

    /// <summary>Inner product, score = Σ aᵢ·bᵢ (vectors stored as given).</summary>
    DotProduct = 1,

    /// <summary>Euclidean distance, score = −‖a − b‖₂ (so that higher is still better).</summary>
    L2 = 2,
}

/// <summary>How an index stores its vectors.</summary>
public enum VectorQuantization
{
    /// <summary>32-bit floats, exact distances.</summary>
    None = 0,

    /// <summary>
    /// Symmetric per-vector int8 codes (scale = max|xᵢ|/127) searched with integer dot products: ¼ of the
    /// vector memory. When <see cref="HnswOptions.KeepFullPrecision"/> is set the float vectors are kept
    /// beside the codes (in a separate section, so an opened file leaves them on disk until needed) and the
    /// candidates are rescored against them.
    /// </summary>
    Int8 = 1,
}

/// <summary>One search result: the caller's id and a score where higher is better (see <see cref="DistanceMetric"/>).</summary>
public readonly record struct VectorHit(long Id, float Score);

/// <summary>One vector to add, with optional metadata that <see cref="VectorFilter"/> can match.</summary>
public readonly record struct VectorRecord(long Id, float[] Vector, IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>Where an index's memory goes. <see cref="BytesPerVector"/> divides everything by the live count.</summary>
public sealed record IndexMemoryReport(int Count, int Slots, long VectorBytes, long GraphBytes, long FullPrecisionBytes, long MetadataBytes, long IdMapBytes)
{
    /// <summary>All bytes together.</summary>
    public long TotalBytes => VectorBytes + GraphBytes + FullPrecisionBytes + MetadataBytes + IdMapBytes;

    /// <summary>Total bytes per live vector (0 when empty).</summary>
    public double BytesPerVector => Count == 0 ? 0 : (double)TotalBytes / Count;
}
