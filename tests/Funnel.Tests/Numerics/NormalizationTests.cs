using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class NormalizationTests
{
    [Fact]
    public void LayerNormByHand()
    {
        // [1, 2, 3, 4]: mean 2.5, biased variance 1.25 → (x − 2.5)/√1.25.
        float[] x = [1, 2, 3, 4];
        Normalization.LayerNorm(x, 1, [1, 1, 1, 1], [0, 0, 0, 0], 0f);
        double s = Math.Sqrt(1.25);
        Assert.Equal(new[] { -1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s }, x.Select(v => (double)v), new ToleranceComparer(1e-6));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 17)]
    [InlineData(5, 384)]
    [InlineData(2, 1000)]
    [InlineData(203, 40)]
    public void LayerNormAgreesWithTheScalarReference(int rows, int d)
    {
        var rng = new Random(rows * 31 + d);
        float[] x = KernelAssert.Random(rng, rows * d, 5f), gamma = KernelAssert.Random(rng, d), beta = KernelAssert.Random(rng, d);
        for (int i = 0; i < x.Length; i++) x[i] += 100f; // a large mean exposes E[x²]−E[x]² cancellation
        float[] expected = (float[])x.Clone();
        Normalization.LayerNormReference(expected, rows, gamma, beta, 1e-12f);
        Normalization.LayerNorm(x, rows, gamma, beta, 1e-12f, maxThreads: 2);
        var magnitude = Enumerable.Range(0, rows * d).Select(i => 10.0 * Math.Abs(gamma[i % d]) + Math.Abs(beta[i % d])).ToArray();
        KernelAssert.Close(expected, x, magnitude, 2e-5, 1e-6, $"layer norm {rows}×{d}");
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(double obj) => 0;
    }
}
