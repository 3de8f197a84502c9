using Funnel.Index;

namespace Funnel.Tests.Index;

public class VectorMathTests
{
    public static TheoryData<int> Lengths => [0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 128, 129, 383, 384, 385, 1031];

    [Theory, MemberData(nameof(Lengths))]
    public void FloatKernelsAgreeWithScalarReference(int n)
    {
        var rng = new Random(n);
        var a = IndexTestData.Gaussian(rng, n, 1);
        var b = IndexTestData.Gaussian(rng, n, 1);
        double dot = 0, l2 = 0;
        for (int i = 0; i < n; i++) { dot += (double)a[i] * b[i]; l2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); }
        float tol = 1e-5f * (n + 1);
        Assert.Equal(VectorMath.DotReference(a, b), VectorMath.Dot(a, b), tol);
        Assert.Equal(VectorMath.L2SquaredReference(a, b), VectorMath.L2Squared(a, b), tol);
        Assert.Equal(dot, VectorMath.Dot(a, b), tol);
        Assert.Equal(l2, VectorMath.L2Squared(a, b), tol);
    }

    [Theory, MemberData(nameof(Lengths))]
    public void Int8KernelIsExact(int n)
    {
        var rng = new Random(1000 + n);
        var a = new sbyte[n];
        var b = new sbyte[n];
        for (int i = 0; i < n; i++) { a[i] = (sbyte)rng.Next(-127, 128); b[i] = (sbyte)rng.Next(-127, 128); }
        Assert.Equal(VectorMath.DotInt8Reference(a, b), VectorMath.DotInt8(a, b));
        // Extremes: every product at its maximum magnitude must not overflow the int16 pair sums.
        Array.Fill(a, (sbyte)-127);
        Array.Fill(b, (sbyte)-127);
        Assert.Equal(127 * 127 * n, VectorMath.DotInt8(a, b));
    }

    [Fact]
    public void HandCheckedValues()
    {
        Assert.Equal(32f, VectorMath.Dot([1, 2, 3], [4, 5, 6]));
        Assert.Equal(27f, VectorMath.L2Squared([1, 2, 3], [4, 5, 6]));
        Assert.Equal(-12, VectorMath.DotInt8([1, -2, 3], [4, 5, -2]));
        var v = new float[] { 3, 4 };
        VectorMath.Normalize(v);
        Assert.Equal([0.6f, 0.8f], v);
    }

    [Fact]
    public void MismatchedLengthsAreRejected() =>
        Assert.Throws<ArgumentException>(() => VectorMath.Dot([1, 2], [1]));
}
