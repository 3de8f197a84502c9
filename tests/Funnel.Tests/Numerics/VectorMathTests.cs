using System.Runtime.Intrinsics;
using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class VectorMathTests
{
    private static IEnumerable<float> Grid(float from, float to, int steps)
    {
        for (int i = 0; i <= steps; i++) yield return from + (to - from) * i / steps;
    }

    [Fact]
    public void VectorErfIsWithin1e6OfTheDoublePrecisionErf()
    {
        foreach (float x in Grid(-7f, 7f, 20000))
        {
            double expected = Activations.Erf(x);
            Assert.InRange(VectorMath.Erf(Vector512.Create(x)).ToScalar() - expected, -1e-6, 1e-6);
            Assert.InRange(VectorMath.Erf(Vector256.Create(x)).ToScalar() - expected, -1e-6, 1e-6);
        }
    }

    [Fact]
    public void VectorGeluMatchesTheScalarReference()
    {
        foreach (float x in Grid(-12f, 12f, 20000))
        {
            double expected = Activations.GeluReference(x), tol = 1e-6 * Math.Max(1, Math.Abs(x));
            Assert.InRange(VectorMath.Gelu(Vector512.Create(x)).ToScalar() - expected, -tol, tol);
            Assert.InRange(VectorMath.Gelu(x) - expected, -tol, tol);
        }
    }

    [Fact]
    public void VectorExpHasSmallRelativeErrorOverTheFloatRange()
    {
        foreach (float x in Grid(-87f, 88f, 50000))
        {
            double expected = Math.Exp(x);
            double rel = Math.Abs(VectorMath.Exp(Vector512.Create(x)).ToScalar() - expected) / expected;
            Assert.True(rel < 4e-7, $"exp({x}) relative error {rel}");
            Assert.True(Math.Abs(VectorMath.Exp(Vector256.Create(x)).ToScalar() - expected) / expected < 4e-7);
        }
        // Far below the range exp underflows to (nearly) zero instead of wrapping the exponent.
        Assert.InRange(VectorMath.Exp(Vector512.Create(-1000f)).ToScalar(), 0f, 2e-38f);
    }

    [Fact]
    public void VectorExp2HasSmallRelativeErrorOverItsRangeAndStaysNormalBelowIt()
    {
        foreach (float y in Grid(-125f, 127f, 50000))
        {
            double expected = Math.Pow(2, y);
            double rel = Math.Abs(VectorMath.Exp2(Vector512.Create(y)).ToScalar() - expected) / expected;
            Assert.True(rel < 3e-7, $"exp2({y}) relative error {rel}");
            Assert.True(Math.Abs(VectorMath.Exp2(Vector256.Create(y)).ToScalar() - expected) / expected < 3e-7);
            Assert.True(Math.Abs(VectorMath.Exp2(y) - expected) / expected < 3e-7);
        }
        Assert.Equal(MathF.Pow(2, -125), VectorMath.Exp2(Vector512.Create(-1000f)).ToScalar());
        Assert.True(float.IsNaN(VectorMath.Exp2(Vector512.Create(float.NaN)).ToScalar()));
        Assert.True(float.IsNaN(VectorMath.Exp(Vector512.Create(float.NaN)).ToScalar()));
    }

    [Fact]
    public void HorizontalSumAddsEveryLane()
    {
        var v = Vector512.Create(1f, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
        Assert.Equal(65535f, VectorMath.HorizontalSum(v));
    }

    [Fact]
    public void ExpScaledSumMatchesScalarAndSumsTheResults()
    {
        var rng = new Random(3);
        foreach (int length in new[] { 1, 15, 16, 37, 256 })
        {
            float[] values = KernelAssert.Random(rng, length, 10f);
            float[] copy = (float[])values.Clone();
            float sum = VectorMath.ExpScaledSum(values, 0.5f, 2f);
            double expectedSum = 0;
            for (int i = 0; i < length; i++)
            {
                double e = Math.Exp(0.5 * copy[i] - 2);
                expectedSum += e;
                Assert.Equal(e, values[i], e * 1e-6);
            }
            Assert.Equal(expectedSum, sum, expectedSum * 1e-5);
        }
    }
}
