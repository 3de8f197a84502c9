namespace Funnel.Inference;

/// <summary>How a cross-encoder turns its logit into a score.</summary>
public enum ScoreActivation
{
    /// <summary>The raw logit (ms-marco cross-encoders).</summary>
    Identity,
    /// <summary>1 / (1 + e^−logit).</summary>
    Sigmoid,
}

/// <summary>Run-time settings of <see cref="SentenceEncoder"/> and <see cref="CrossEncoder"/>.</summary>
public sealed record EncoderOptions
{
    /// <summary>Sequences per forward pass; inputs are sorted by length first, so a batch holds similar lengths.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Threads one call may use.</summary>
    public int MaxThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>Truncate inputs to this many tokens (specials included) instead of the model's configured window.</summary>
    public int? MaxSequenceLength { get; init; }

    /// <summary>Cross-encoders: overrides the activation the model's config.json names.</summary>
    public ScoreActivation? Activation { get; init; }

    internal void Validate()
    {
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be at least 1");
        if (MaxThreads < 1) throw new ArgumentOutOfRangeException(nameof(MaxThreads), MaxThreads, "MaxThreads must be at least 1");
        if (MaxSequenceLength is < 2) throw new ArgumentOutOfRangeException(nameof(MaxSequenceLength), MaxSequenceLength, "MaxSequenceLength must be at least 2 ([CLS] and [SEP])");
    }
}
