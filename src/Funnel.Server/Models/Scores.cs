namespace Funnel.Server.Models;

/// <summary>The probabilities TEI's and Cohere's rerank APIs return: the sigmoid of the logit, whatever the model's activation.</summary>
internal static class Scores
{
    public static float Sigmoid(float logit) => 1f / (1f + MathF.Exp(-logit));
}
