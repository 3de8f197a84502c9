using System.Security.Cryptography;

namespace Funnel.Inference;

/// <summary>
/// Identifies the exact model that produced a collection's vectors: where it was loaded from,
/// the SHA-256 of its weights (of all shards' bytes in shard order), and the settings that shape
/// the vectors, the prompts included: <see cref="DocumentPrompt"/> went before every stored text and
/// <see cref="QueryPrompt"/> goes before every query (null: none; a fingerprint recorded before
/// prompts were, reads as none). Two fingerprints with equal weights, dimension, pooling,
/// normalisation and prompts give identical embeddings. <see cref="Source"/> (null in older
/// records) says whether the folder was a packaged model, a Hub snapshot or another folder.
/// <see cref="Precision"/> is the arithmetic the vectors were computed in (records from before it was
/// recorded read as fp32): int8 vectors are close to fp32 ones but not the same, so they do not mix.
/// </summary>
public sealed record ModelFingerprint(string Model, string WeightsSha256, int Dimension, string Pooling, bool Normalize,
    string? QueryPrompt = null, string? DocumentPrompt = null, ModelSource? Source = null,
    InferencePrecision Precision = InferencePrecision.Fp32)
{
    /// <summary>Whether vectors from the two models are interchangeable (the path and source may differ).</summary>
    public bool IsCompatibleWith(ModelFingerprint other)
        => WeightsSha256 == other.WeightsSha256 && Dimension == other.Dimension && Pooling == other.Pooling && Normalize == other.Normalize
           && QueryPrompt == other.QueryPrompt && DocumentPrompt == other.DocumentPrompt && Precision == other.Precision;

    /// <summary>A model argument that loads this model again: its folder while it exists, else its packaged or Hub id.</summary>
    public string Reference => Directory.Exists(Model) || Source is null or { Kind: ModelSourceKind.Folder } ? Model : Source.Id;

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
