using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class MatMulTests
{
    [Fact]
    public void PackingKeepsEveryWeightAddressable()
    {
        // 3×2 by hand, then a shape with a ragged last panel.
        var w = new float[] { 1, 2, 3, 4, 5, 6 };
        var packed = PackedMatrix.Pack(w, 3, 2);
        Assert.Equal((3, 2), (packed.N, packed.K));
        Assert.Equal(6f, packed[2, 1]);
        Assert.Equal(3f, packed[1, 0]);
        var rng = new Random(1);
        float[] big = KernelAssert.Random(rng, 45 * 7);
        var pb = PackedMatrix.Pack(big, 45, 7);
        for (int j = 0; j < 45; j++)
            for (int p = 0; p < 7; p++) Assert.Equal(big[j * 7 + p], pb[j, p]);
    }

    [Fact]
    public void SmallProductByHand()
    {
        // x = [[1, 2]], W = [[1, 0], [0, 1], [1, 1]], b = [0.5, 0, -1] → [1.5, 2, 2].
        var w = PackedMatrix.Pack([1, 0, 0, 1, 1, 1], 3, 2);
        var y = new float[3];
        MatMul.Linear([1f, 2f], 1, w, [0.5f, 0f, -1f], y);
        Assert.Equal(new[] { 1.5f, 2f, 2f }, y);
    }

    public static TheoryData<int, int, int, string, bool, int> Shapes => new()
    {
        { 1, 1, 1, nameof(Epilogue.None), true, 1 },
        { 1, 384, 384, nameof(Epilogue.None), true, 2 },
        { 7, 33, 17, nameof(Epilogue.Gelu), true, 1 },
        { 9, 31, 5, nameof(Epilogue.Residual), false, 2 },
        { 13, 65, 100, nameof(Epilogue.Residual), true, 1 },
        { 37, 96, 384, nameof(Epilogue.Gelu), true, 2 },
        { 70, 160, 61, nameof(Epilogue.None), false, 2 },
        { 300, 40, 24, nameof(Epilogue.Gelu), true, 2 },
        { 2, 1152, 24, nameof(Epilogue.None), true, 2 },
        { 20, 100, 384, nameof(Epilogue.Residual), true, 2 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LinearAgreesWithTheScalarReference(int m, int n, int k, string epilogueName, bool withBias, int threads)
    {
        var epilogue = Enum.Parse<Epilogue>(epilogueName); // the enum is internal, test parameters are public
        var rng = new Random(m * 1000003 + n * 1009 + k);
        float[] x = KernelAssert.Random(rng, m * k), w = KernelAssert.Random(rng, n * k, 0.5f);
        float[] bias = withBias ? KernelAssert.Random(rng, n) : [];
        float[] residual = KernelAssert.Random(rng, m * n, 3f);
        var packed = PackedMatrix.Pack(w, n, k);
        var expected = new float[m * n];
        MatMul.LinearReference(x, m, packed, bias, expected, epilogue, residual);
        var actual = new float[m * n];
        MatMul.Linear(x, m, packed, bias, actual, epilogue, residual, threads);

        var magnitude = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = withBias ? Math.Abs(bias[j]) : 0;
                for (int p = 0; p < k; p++) s += Math.Abs(x[i * k + p] * w[j * k + p]);
                magnitude[i * n + j] = s + (epilogue == Epilogue.Residual ? Math.Abs(residual[i * n + j]) : 0);
            }
        KernelAssert.Close(expected, actual, magnitude, 1e-6, 1e-6, $"{m}×{n}×{k} {epilogue}");
    }

    [Fact]
    public void ResidualMayAliasTheOutput()
    {
        var rng = new Random(7);
        int m = 19, n = 70, k = 45;
        float[] x = KernelAssert.Random(rng, m * k), bias = KernelAssert.Random(rng, n);
        var packed = PackedMatrix.Pack(KernelAssert.Random(rng, n * k), n, k);
        float[] y = KernelAssert.Random(rng, m * n);
        var expected = new float[m * n];
        MatMul.LinearReference(x, m, packed, bias, expected, Epilogue.Residual, y);
        MatMul.Linear(x, m, packed, bias, y, Epilogue.Residual, y, maxThreads: 2);
        var magnitude = Enumerable.Repeat((double)k, m * n).ToArray();
        KernelAssert.Close(expected, y, magnitude, 1e-6, 1e-6, "aliased residual");
    }

    [Fact]
    public void MismatchedShapesAreRejectedWithTheParameterName()
    {
        var packed = PackedMatrix.Pack(new float[6], 3, 2);
        var ex = Assert.Throws<ArgumentException>(() => MatMul.Linear(new float[4], 2, packed, new float[2], new float[6]));
        Assert.Equal("bias", ex.ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => MatMul.Linear(new float[4], 2, packed, default, new float[5])).ParamName);
    }
}
