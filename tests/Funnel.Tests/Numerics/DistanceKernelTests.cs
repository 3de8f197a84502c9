using Funnel.Numerics;
using Funnel.Tests.Index;

namespace Funnel.Tests.Numerics;

public class DistanceKernelTests
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
    public void NormalizeMakesUnitVectorsAndLeavesZeroAsItIs()
    {
        var zero = new float[8];
        VectorMath.Normalize(zero);
        Assert.All(zero, x => Assert.Equal(0f, x)); // not NaN
        // Norm 5e-15, below F.normalize's 1e-12 clamp (which would give [0.003, 0.004]): still a unit vector.
        var tiny = new float[] { 3e-15f, 4e-15f };
        VectorMath.Normalize(tiny);
        Assert.Equal(0.6f, tiny[0], 1e-6f);
        Assert.Equal(0.8f, tiny[1], 1e-6f);
        var rng = new Random(7);
        float[] v = IndexTestData.Gaussian(rng, 384, 1);
        VectorMath.Normalize(v);
        Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 1e-6);
    }

    [Fact]
    public void TheEncodersNormalizeAndACosineIndexStoreTheSameBits()
    {
        float[] raw = IndexTestData.Gaussian(new Random(11), 384, 1);
        float[] encoded = raw.ToArray();
        Funnel.Inference.SentenceEncoder.NormalizeInPlace(encoded);
        using var index = new Funnel.Index.FlatIndex(384, Funnel.Index.DistanceMetric.Cosine);
        index.Upsert(1, raw);
        Assert.Equal(encoded, index.GetVector(1));
    }

    [Fact]
    public void MismatchedLengthsAreRejected() =>
        Assert.Throws<ArgumentException>(() => VectorMath.Dot([1, 2], [1]));
}
