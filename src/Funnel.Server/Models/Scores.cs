using Funnel.Inference;

namespace Funnel.Server.Models;

/// <summary>Cross-encoder scores as raw logits or as probabilities, whatever activation the model applies.</summary>
public static class Scores
{
    public static float Sigmoid(float logit) => 1f / (1f + MathF.Exp(-logit));

    /// <summary>The logit behind a sigmoid output, clamped so that saturated probabilities stay finite.</summary>
    public static float Logit(float probability)
    {
        double p = Math.Clamp(probability, 1e-7, 1 - 1e-7);
        return (float)Math.Log(p / (1 - p));
    }

    /// <summary>Converts what <see cref="CrossEncoder.Score(IReadOnlyList{ValueTuple{string,string}},CancellationToken)"/> returned under <paramref name="activation"/>.</summary>
    public static float Convert(float score, ScoreActivation activation, bool raw) => (activation, raw) switch
    {
        (ScoreActivation.Identity, true) or (ScoreActivation.Sigmoid, false) => score,
        (ScoreActivation.Identity, false) => Sigmoid(score),
        _ => Logit(score),
    };
}
