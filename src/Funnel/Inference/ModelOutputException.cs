namespace Funnel.Inference;

/// <summary>
/// A model produced NaN or ±∞ for an input (weights that overflow float32 on it, say). The output is refused rather than
/// passed on, because a non-finite vector or score silently poisons everything downstream (indexes, rankings, JSON).
/// </summary>
public sealed class ModelOutputException(string message) : FunnelException(FunnelErrorKind.InvalidModelOutput, message)
{
    /// <summary>Throws unless every value of one input's output is finite.</summary>
    internal static void ThrowIfNotFinite(ReadOnlySpan<float> values, string model, string what)
    {
        if (System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(values)) return;
        int bad = 0;
        while (float.IsFinite(values[bad])) bad++;
        throw new ModelOutputException(
            $"{model} gave {values[bad]} in the {what} of an input: its weights overflow float32 on it, so the model cannot be used as it is");
    }
}
