using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class MatMulGradientsTests
{
    [Fact]
    public void WeightGradientByHand()
    {
        // dY = [[1, 2], [3, 4]] (m = 2, n = 2), X = [[1, 0, 2], [0, 1, 1]] (k = 3): dYᵀ·X = [[1, 3, 5], [2, 4, 8]], added to 1s.
        float[] dw = [1, 1, 1, 1, 1, 1];
        MatMulGradients.AccumulateWeightGradient([1, 2, 3, 4], [1, 0, 2, 0, 1, 1], 2, 2, 3, dw);
        Assert.Equal(new float[] { 2, 4, 6, 3, 5, 9 }, dw);
    }

    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 1, 1, 1, 1 },
        { 3, 8, 32, 1 },
        { 17, 9, 33, 2 },
        { 300, 40, 64, 2 },
        { 513, 96, 70, 2 },
        { 64, 1, 384, 1 },
        { 260, 130, 5, 2 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void WeightGradientAgreesWithTheScalarReference(int m, int n, int k, int threads)
    {
        var rng = new Random(m * 7919 + n * 31 + k);
        float[] dy = KernelAssert.Random(rng, m * n), x = KernelAssert.Random(rng, m * k), start = KernelAssert.Random(rng, n * k);
        float[] expected = (float[])start.Clone(), actual = (float[])start.Clone();
        MatMulGradients.AccumulateWeightGradientReference(dy, x, m, n, k, expected);
        MatMulGradients.AccumulateWeightGradient(dy, x, m, n, k, actual, threads);
        var magnitude = new double[n * k];
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++)
            {
                double s = Math.Abs(start[j * k + p]);
                for (int i = 0; i < m; i++) s += Math.Abs(dy[i * n + j] * x[i * k + p]);
                magnitude[j * k + p] = s;
            }
        KernelAssert.Close(expected, actual, magnitude, 1e-6, 1e-6, $"dW {m}×{n}×{k}");
    }

    [Fact]
    public void WeightGradientDoesNotDependOnTheThreadCount()
    {
        var rng = new Random(3);
        int m = 700, n = 200, k = 96;
        float[] dy = KernelAssert.Random(rng, m * n), x = KernelAssert.Random(rng, m * k);
        float[] one = new float[n * k], two = new float[n * k];
        MatMulGradients.AccumulateWeightGradient(dy, x, m, n, k, one, 1);
        MatMulGradients.AccumulateWeightGradient(dy, x, m, n, k, two, 2);
        Assert.Equal(one, two);
    }

    [Theory]
    [InlineData(5, 3)]
    [InlineData(40, 33)]
    [InlineData(384, 1536)]
    public void TransposedPackingHoldsWTransposed(int n, int k)
    {
        float[] w = KernelAssert.Random(new Random(n + k), n * k);
        PackedMatrix t = MatMulGradients.PackTransposed(w, n, k);
        Assert.Equal((k, n), (t.N, t.K));
        for (int j = 0; j < k; j++)
            for (int p = 0; p < n; p++) Assert.Equal(w[p * k + j], t[j, p]);
    }

    [Fact]
    public void InputGradientIsTheForwardKernelOnWTransposed()
    {
        var rng = new Random(11);
        int m = 19, n = 70, k = 45;
        float[] dy = KernelAssert.Random(rng, m * n), w = KernelAssert.Random(rng, n * k);
        var dx = new float[m * k];
        MatMul.Linear(dy, m, MatMulGradients.PackTransposed(w, n, k), [], dx, maxThreads: 2);
        var expected = new float[m * k];
        var magnitude = new double[m * k];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
            {
                double acc = 0, mag = 0;
                for (int j = 0; j < n; j++)
                {
                    acc += dy[i * n + j] * w[j * k + p];
                    mag += Math.Abs(dy[i * n + j] * w[j * k + p]);
                }
                expected[i * k + p] = (float)acc;
                magnitude[i * k + p] = mag;
            }
        KernelAssert.Close(expected, dx, magnitude, 1e-6, 1e-6, "dX");
    }

    [Theory]
    [InlineData(8, 8, 8)]
    [InlineData(37, 19, 40)]
    [InlineData(256, 64, 1152)]
    public unsafe void TransposeMovesEveryValue(int cols, int rows, int lda)
    {
        float[] a = KernelAssert.Random(new Random(cols + rows), cols * lda);
        var b = new float[rows * cols];
        fixed (float* pa = a, pb = b) GemmTransposedA.Transpose(pa, lda, cols, rows, pb);
        for (int r = 0; r < rows; r++)
            for (int p = 0; p < cols; p++) Assert.Equal(a[p * lda + r], b[r * cols + p]);
    }

    [Fact]
    public void BiasGradientAddsColumnSums()
    {
        var rng = new Random(5);
        int m = 301, n = 300;
        float[] dy = KernelAssert.Random(rng, m * n);
        float[] db = KernelAssert.Random(rng, n), expected = (float[])db.Clone();
        for (int j = 0; j < n; j++)
        {
            float s = expected[j];
            for (int i = 0; i < m; i++) s += dy[i * n + j];
            expected[j] = s;
        }
        MatMulGradients.AccumulateBiasGradient(dy, m, db, 2);
        Assert.Equal(expected, db); // row order, as the loop above: bit for bit
    }
}
