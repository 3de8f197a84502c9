using System.Security.Cryptography;

namespace Funnel.Inference;

/// <summary>
/// Identifies the exact model that produced a collection's vectors: where it was loaded from,
/// the SHA-256 of its weights (of all shards' bytes in shard order), and the settings that shape
/// the vectors. Two fingerprints with equal <see cref="WeightsSha256"/>, dimension, pooling and
/// normalisation give identical embeddings.
/// </summary>
public sealed record ModelFingerprint(string Model, string WeightsSha256, int Dimension, string Pooling, bool Normalize)
{
    /// <summary>Whether vectors from the two models are interchangeable (the path may differ).</summary>
    public bool IsCompatibleWith(ModelFingerprint other)
        => WeightsSha256 == other.WeightsSha256 && Dimension == other.Dimension && Pooling == other.Pooling && Normalize == other.Normalize;

    internal static string Sha256(IReadOnlyList<string> files)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[1 << 20];
        foreach (string file in files)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            int n;
            while ((n = stream.Read(buffer)) > 0) hash.AppendData(buffer, 0, n);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
