using Funnel.Numerics;

namespace Funnel.Tests.Inference;

public class ActivationTests
{
    [Theory]
    // erf values from Abramowitz & Stegun, Table 7.1, and erf(∞) limits.
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(2.0, 0.9953222650189527)]
    [InlineData(3.5, 0.9999992569016276)]
    [InlineData(-1.0, -0.8427007929497149)]
    [InlineData(6.0, 1.0)]
    public void ErfMatchesTables(double x, double expected) =>
        Assert.Equal(expected, Activations.Erf(x), 1e-13);

    [Fact]
    public void GeluIsXTimesNormalCdf()
    {
        // gelu(1) = Φ(1) = 0.8413447460685429; gelu(-1) = -(1 - Φ(1)).
        Assert.Equal(0.8413447460685429, Activations.GeluReference(1f), 1e-7);
        Assert.Equal(-0.15865525393145707, Activations.GeluReference(-1f), 1e-7);
    }
}
