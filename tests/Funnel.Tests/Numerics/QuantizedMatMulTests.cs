using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class QuantizedMatMulTests
{
    [Fact]
    public void WeightsQuantizePerOutputChannelByHand()
    {
        // Row 0: max |w| = 1 → scale 1/127, −0.25 → −31.75 → −32. Row 1 is all zeros.
        // Row 2: max |w| = 2 → scale 2/127, 1.5 → 95.25 → 95, −2 → −127.
        var w = QuantizedMatrix.Quantize([1f, -0.25f, 0f, 0f, 1.5f, -2f], 3, 2);
        Assert.Equal((3, 2), (w.N, w.K));
        Assert.Equal(1f / 127, w.Scale(0));
        Assert.Equal(((sbyte)127, (sbyte)-32), (w[0, 0], w[0, 1]));
        Assert.Equal((0f, (sbyte)0, (sbyte)0), (w.Scale(1), w[1, 0], w[1, 1]));
        Assert.Equal(2f / 127, w.Scale(2));
        Assert.Equal(((sbyte)95, (sbyte)-127), (w[2, 0], w[2, 1]));
        Assert.Equal(new[] { 95, 0, -32 }, w.ColumnSums[..3]);
    }

    [Fact]
    public void NonFiniteWeightsAreRefusedByRow()
    {
        var e = Assert.Throws<ArgumentException>(() => QuantizedMatrix.Quantize([1f, 2f, float.NaN, 0f], 2, 2));
        Assert.Contains("row 1", e.Message);
    }

    [Fact]
    public void ActivationRowQuantizesToU8ByHand()
    {
        // [−1, 0, 3]: 4 over 255 steps, zero point round(63.75) = 64; −1 → 0, 0 → 64, 3 → 255.
        var q = new short[4];
        var (scale, zeroPoint) = QuantizedMatMul.QuantizeRowReference<short>([-1f, 0f, 3f], q);
        Assert.Equal(4f / 255, scale);
        Assert.Equal(64, zeroPoint);
        Assert.Equal(new short[] { 0, 64, 255, 0 }, q);
        // All positive: the range still starts at 0, so the zero point is 0. All zeros: scale 1.
        Assert.Equal((2f / 255, 0), QuantizedMatMul.QuantizeRowReference<short>([0.5f, 2f], q));
        Assert.Equal((1f, 0), QuantizedMatMul.QuantizeRowReference<short>([0f, 0f], q));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(33)]
    [InlineData(384)]
    [InlineData(1537)]
    public void RowQuantizationAgreesWithItsScalarTwin(int k)
    {
        var rng = new Random(k);
        float[] x = KernelAssert.Random(rng, k, 4f);
        x[rng.Next(k)] = 17f; // an outlier, as BERT's hidden states have
        int padded = (k + 3) / 4 * 4;
        short[] expected = new short[padded], actual = Enumerable.Repeat((short)-1, padded).ToArray();
        var reference = QuantizedMatMul.QuantizeRowReference<short>(x, expected);
        var fast = QuantizedMatMul.QuantizeRow<short>(x, actual);
        Assert.Equal(reference, fast);
        Assert.Equal(expected, actual);
        // The VNNI kernel's u8 rows hold the same values as bytes.
        byte[] bytes = Enumerable.Repeat((byte)0xEE, padded).ToArray();
        Assert.Equal(reference, QuantizedMatMul.QuantizeRow<byte>(x, bytes));
        Assert.Equal(expected.Select(v => (byte)v), bytes);
    }

    [Theory]
    [InlineData(5, 3)]
    [InlineData(40, 0)]
    [InlineData(40, 17)]
    [InlineData(40, 39)]
    public void A_row_holding_NaN_quantizes_as_its_scalar_twin_does(int k, int at)
    {
        float[] x = KernelAssert.Random(new Random(k + at), k);
        x[at] = float.NaN;
        short[] expected = new short[k + 3], actual = new short[k + 3];
        var reference = QuantizedMatMul.QuantizeRowReference<short>(x, expected);
        Assert.True(float.IsNaN(reference.Scale));
        Assert.Equal(reference, QuantizedMatMul.QuantizeRow<short>(x, actual));
        Assert.Equal(expected, actual);
    }

    public static TheoryData<string> Kernels => new(Enum.GetNames<QuantizedKernel>());

    [Fact]
    public void BothLayoutsHoldTheSameWeights()
    {
        var rng = new Random(5);
        int n = 37, k = 11;
        float[] w = KernelAssert.Random(rng, n * k);
        var pairs = QuantizedMatrix.Quantize(w, n, k, QuantizedKernel.Pairs);
        var quads = QuantizedMatrix.Quantize(w, n, k, QuantizedKernel.Quads);
        Assert.Equal((12, 12), (pairs.PaddedK, quads.PaddedK));
        for (int j = 0; j < n; j++)
        {
            Assert.Equal(pairs.Scale(j), quads.Scale(j));
            for (int p = 0; p < k; p++) Assert.Equal(pairs[j, p], quads[j, p]);
        }
        Assert.Equal(pairs.ColumnSums, quads.ColumnSums);
        // Every byte of the quads layout outside the weights is zero padding.
        Assert.Equal(pairs.Data.Sum(b => Math.Abs((int)b)), quads.Data.Sum(b => Math.Abs((int)b)));
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void IntegerInputsGiveExactProducts(string kernelName)
    {
        // Weights whose rows reach ±127 quantize with scale 1, activations spanning 0..255 with scale 1
        // and zero point 0: every step is exact, so y is the integer product itself. This checks the
        // packed layout independently of the scalar twin.
        var rng = new Random(3);
        int m = 11, n = 45, k = 37;
        var w = new float[n * k];
        for (int j = 0; j < n; j++)
        {
            for (int p = 0; p < k; p++) w[j * k + p] = rng.Next(-127, 128);
            w[j * k + rng.Next(k)] = rng.Next(2) == 0 ? 127 : -127;
        }
        var x = new float[m * k];
        for (int i = 0; i < m; i++)
        {
            for (int p = 0; p < k; p++) x[i * k + p] = rng.Next(0, 256);
            x[i * k] = 0;
            x[i * k + 1] = 255;
        }
        var quantized = QuantizedMatrix.Quantize(w, n, k, Enum.Parse<QuantizedKernel>(kernelName));
        var y = new float[m * n];
        QuantizedMatMul.Linear(x, m, quantized, [], y, maxThreads: 2);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                long expected = 0;
                for (int p = 0; p < k; p++) expected += (long)x[i * k + p] * (long)w[j * k + p];
                Assert.Equal(expected, (long)y[i * n + j]);
            }
    }

    public static TheoryData<int, int, int, string, bool, int, string> Shapes
    {
        get
        {
            var shapes = new TheoryData<int, int, int, string, bool, int, string>();
            foreach (var row in MatMulTests.Shapes)
            {
                object[] v = row;
                foreach (string kernel in Enum.GetNames<QuantizedKernel>())
                    shapes.Add((int)v[0], (int)v[1], (int)v[2], (string)v[3], (bool)v[4], (int)v[5], kernel);
            }
            return shapes;
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LinearAgreesWithTheScalarTwinExactly(int m, int n, int k, string epilogueName, bool withBias, int threads, string kernelName)
    {
        var epilogue = Enum.Parse<Epilogue>(epilogueName); // the enum is internal, test parameters are public
        var rng = new Random(m * 1000003 + n * 1009 + k);
        float[] x = KernelAssert.Random(rng, m * k), w = KernelAssert.Random(rng, n * k, 0.5f);
        float[] bias = withBias ? KernelAssert.Random(rng, n) : [];
        float[] residual = KernelAssert.Random(rng, m * n, 3f);
        var quantized = QuantizedMatrix.Quantize(w, n, k, Enum.Parse<QuantizedKernel>(kernelName));
        var expected = new float[m * n];
        QuantizedMatMul.LinearReference(x, m, quantized, bias, expected, epilogue, residual);
        var actual = new float[m * n];
        QuantizedMatMul.Linear(x, m, quantized, bias, actual, epilogue, residual, threads);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{m}×{n}×{k} {epilogue} {kernelName}: element {i} is {actual[i]}, the scalar twin gives {expected[i]}");
    }

    [Theory]
    [InlineData(1, 384, 384)]
    [InlineData(40, 1536, 384)]
    [InlineData(40, 384, 1536)]
    [InlineData(9, 33, 7)]
    public void LinearIsWithinTheQuantizationErrorOfFp32(int m, int n, int k)
    {
        // Rounding moves each weight by at most s_w/2 and each activation by at most sₓ/2, so
        // |y − y₃₂| ≤ Σ_p (|x|·s_w/2 + |w|·sₓ/2 + sₓ·s_w/4), plus fp32 rounding of the sums.
        var rng = new Random(n + k);
        float[] x = KernelAssert.Random(rng, m * k, 2f), w = KernelAssert.Random(rng, n * k, 0.1f), bias = KernelAssert.Random(rng, n);
        var quantized = QuantizedMatrix.Quantize(w, n, k);
        var actual = new float[m * n];
        QuantizedMatMul.Linear(x, m, quantized, bias, actual, maxThreads: 2);
        for (int i = 0; i < m; i++)
        {
            float min = Math.Min(0, x.AsSpan(i * k, k).ToArray().Min()), max = Math.Max(0, x.AsSpan(i * k, k).ToArray().Max());
            double sx = (max - min) / 255.0;
            for (int j = 0; j < n; j++)
            {
                double exact = bias[j], bound = 1e-5 * Math.Abs(bias[j]);
                double sw = quantized.Scale(j);
                for (int p = 0; p < k; p++)
                {
                    double xv = x[i * k + p], wv = w[j * k + p];
                    exact += xv * wv;
                    bound += Math.Abs(xv) * sw / 2 + Math.Abs(wv) * sx / 2 + sx * sw / 4 + 1e-6 * Math.Abs(xv * wv);
                }
                double error = Math.Abs(actual[i * n + j] - exact);
                Assert.True(error <= bound, $"{m}×{n}×{k} [{i},{j}]: {actual[i * n + j]} vs fp32 {exact}, error {error} > bound {bound}");
            }
        }
    }

    [Fact]
    public void ResidualMayAliasTheOutput()
    {
        var rng = new Random(7);
        int m = 19, n = 70, k = 45;
        float[] x = KernelAssert.Random(rng, m * k), bias = KernelAssert.Random(rng, n);
        var quantized = QuantizedMatrix.Quantize(KernelAssert.Random(rng, n * k), n, k);
        float[] y = KernelAssert.Random(rng, m * n);
        var expected = new float[m * n];
        QuantizedMatMul.LinearReference(x, m, quantized, bias, expected, Epilogue.Residual, y);
        QuantizedMatMul.Linear(x, m, quantized, bias, y, Epilogue.Residual, y, maxThreads: 2);
        Assert.Equal(expected, y);
    }
}
