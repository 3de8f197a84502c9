namespace Funnel.Index;

/// <summary>Parameters of an <see cref="HnswIndex"/> (Malkov &amp; Yashunin). Defaults follow hnswlib's usual choices.</summary>
public sealed record HnswOptions
{
    /// <summary>The range of <see cref="M"/>.</summary>
    public const int MinM = 2, MaxM = 256;

    /// <summary>Links per node on the upper layers; layer 0 allows 2·M. Between <see cref="MinM"/> and <see cref="MaxM"/>.</summary>
    public int M { get; init; } = 16;

    /// <summary>Candidate list size while inserting.</summary>
    public int EfConstruction { get; init; } = 200;

    /// <summary>Default candidate list size while searching (raised to k when smaller).</summary>
    public int EfSearch { get; init; } = 64;

    /// <summary>Seed of the level generator: a single-threaded build with the same seed and input is identical.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Vector storage.</summary>
    public VectorQuantization Quantization { get; init; } = VectorQuantization.None;

    /// <summary>With <see cref="VectorQuantization.Int8"/>: keep the float vectors to rescore candidates.</summary>
    public bool KeepFullPrecision { get; init; } = true;

    internal void Validate()
    {
        if (M is < MinM or > MaxM) throw new ArgumentOutOfRangeException(nameof(M), M, $"HnswOptions.M must be between {MinM} and {MaxM}");
        if (EfConstruction < 1) throw new ArgumentOutOfRangeException(nameof(EfConstruction), EfConstruction, "HnswOptions.EfConstruction must be at least 1");
        if (EfSearch < 1) throw new ArgumentOutOfRangeException(nameof(EfSearch), EfSearch, "HnswOptions.EfSearch must be at least 1");
        if (!Enum.IsDefined(Quantization)) throw new ArgumentOutOfRangeException(nameof(Quantization), Quantization, "unknown quantization");
    }
}
