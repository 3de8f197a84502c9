namespace Funnel.Inference;

/// <summary>How a cross-encoder turns its logit into a score.</summary>
public enum ScoreActivation
{
    /// <summary>The raw logit (ms-marco cross-encoders).</summary>
    Identity,
    /// <summary>1 / (1 + e^−logit).</summary>
    Sigmoid,
}

/// <summary>The arithmetic of an encoder's linear layers.</summary>
public enum InferencePrecision
{
    /// <summary>fp32 throughout: the reference.</summary>
    Fp32,
    /// <summary>
    /// Dynamic int8 quantization of the linear layers: int8 weights with one scale per output feature,
    /// activations quantized per token on every call, exact int32 sums, fp32 bias, GELU, residual and
    /// LayerNorm; attention and softmax stay fp32. Vectors differ slightly from fp32 ones.
    /// </summary>
    Int8,
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

    /// <summary>The arithmetic of the linear layers; <see cref="InferencePrecision.Fp32"/> unless asked.</summary>
    public InferencePrecision Precision { get; init; } = InferencePrecision.Fp32;

    internal void Validate()
    {
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be at least 1");
        if (MaxThreads < 1) throw new ArgumentOutOfRangeException(nameof(MaxThreads), MaxThreads, "MaxThreads must be at least 1");
        if (!Enum.IsDefined(Precision)) throw new ArgumentOutOfRangeException(nameof(Precision), Precision, "Precision must be Fp32 or Int8");
        if (MaxSequenceLength is < 2) throw new ArgumentOutOfRangeException(nameof(MaxSequenceLength), MaxSequenceLength, "MaxSequenceLength must be at least 2 ([CLS] and [SEP])");
    }
}
