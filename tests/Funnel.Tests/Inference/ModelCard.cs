namespace Funnel.Tests.Inference;

/// <summary>
/// Published all-MiniLM-L6-v2 outputs (fp32, mean pooling + L2 normalisation), first 6 of 384 dims, from shared/ASSETS.md
/// (a public test file of an R sentence-transformers binding, which allows 1e-6).
/// </summary>
internal static class ModelCard
{
    public const double Tolerance = 1e-6;

    public static readonly (string Text, double[] Start)[] MiniLmL6V2 =
    [
        ("This is an example sentence", [0.06765693, 0.06349593, 0.04871314, 0.07930495, 0.03744806, 0.00265273]),
        ("Each sentence is converted.", [0.07853645, 0.08856265, -0.00209270, -0.00717247, -0.01252624, 0.01881747]),
        ("", [-0.11883835, 0.04829856, -0.00254805, -0.01101118, 0.05195070, 0.01029179]),
        ("Café déjà vu — 東京", [0.05083271, 0.00967685, 0.09635572, -0.00997369, -0.01987603, 0.01692343]),
    ];

    /// <summary>Asserts that <paramref name="vector"/> starts with the published values of <paramref name="sentence"/>.</summary>
    public static void AssertStartsLikeMiniLm(int sentence, ReadOnlySpan<float> vector, string who)
    {
        var (text, start) = MiniLmL6V2[sentence];
        for (int d = 0; d < start.Length; d++)
            Assert.True(Math.Abs(vector[d] - start[d]) <= Tolerance, $"{who}, \"{text}\" dim {d}: {vector[d]:R}, published {start[d]}");
    }
}
