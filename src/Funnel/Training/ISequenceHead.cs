namespace Funnel.Training;

/// <summary>What sits on the encoder and turns each sequence's last hidden states into the numbers a loss sees:
/// an embedding (bi-encoder) or a logit (cross-encoder).</summary>
internal interface ISequenceHead
{
    /// <summary>Numbers per sequence.</summary>
    int Dimension { get; }

    /// <summary>Writes [sequences × <see cref="Dimension"/>] representations and returns what its backward pass needs.</summary>
    IHeadPass Forward(EncoderActivations act, bool training, Span<float> representations);
}

/// <summary>One forward pass of a head, ready to be differentiated.</summary>
internal interface IHeadPass
{
    /// <summary>d(last hidden states) [tokens × hidden] from d(representations); accumulates the head's own gradients.</summary>
    void Backward(ReadOnlySpan<float> dRepresentations, Span<float> dStates);
}
