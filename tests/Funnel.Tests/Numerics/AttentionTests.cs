using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class AttentionTests
{
    [Fact]
    public void SoftmaxByHand()
    {
        // softmax([0, ln 3]) = [1/4, 3/4]; scale 2 on [0, ln 3 / 2] gives the same.
        float[] row = [0f, MathF.Log(3f) / 2];
        Attention.Softmax(row, 2f);
        Assert.Equal(0.25f, row[0], 1e-6f);
        Assert.Equal(0.75f, row[1], 1e-6f);
    }

    [Fact]
    public void OneTokenAttendsOnlyToItselfSoTheOutputIsItsValue()
    {
        int heads = 2, headDim = 3, hidden = 6;
        float[] qkv = KernelAssert.Random(new Random(5), 3 * hidden);
        var output = new float[hidden];
        Attention.SelfAttention(qkv, 1, heads, headDim, output);
        Assert.Equal(qkv[(2 * hidden)..], output);
    }

    [Theory]
    [InlineData(1, 2, 32)]
    [InlineData(5, 12, 32)]
    [InlineData(33, 3, 16)]
    [InlineData(70, 2, 40)]
    [InlineData(129, 1, 64)]
    public void SelfAttentionAgreesWithTheScalarReference(int seqLen, int heads, int headDim)
    {
        int hidden = heads * headDim;
        float[] qkv = KernelAssert.Random(new Random(seqLen * 7 + heads), seqLen * 3 * hidden, 2f);
        var expected = new float[seqLen * hidden];
        Attention.SelfAttentionReference(qkv, seqLen, heads, headDim, expected);
        var actual = new float[seqLen * hidden];
        Attention.SelfAttention(qkv, seqLen, heads, headDim, actual, maxThreads: 2);
        // Outputs are convex combinations of V (|v| ≤ 2); scores reach ±4·headDim·… before softmax.
        KernelAssert.Close(expected, actual, Enumerable.Repeat(2.0, expected.Length).ToArray(), 2e-5, 1e-6, $"attention L={seqLen}");
    }

    [Fact]
    public void ABatchIsEachSequenceOnItsOwn()
    {
        int heads = 4, headDim = 32, hidden = heads * headDim;
        int[] lengths = [7, 1, 40, 0, 23];
        int tokens = lengths.Sum();
        float[] qkv = KernelAssert.Random(new Random(11), tokens * 3 * hidden, 2f);
        var actual = new float[tokens * hidden];
        Attention.SelfAttention(qkv, lengths, heads, headDim, actual, maxThreads: 2);
        var expected = new float[tokens * hidden];
        for (int s = 0, t0 = 0; s < lengths.Length; t0 += lengths[s++])
            Attention.SelfAttentionReference(qkv.AsSpan(t0 * 3 * hidden), lengths[s], heads, headDim, expected.AsSpan(t0 * hidden));
        KernelAssert.Close(expected, actual, Enumerable.Repeat(2.0, expected.Length).ToArray(), 2e-5, 1e-6, "batched attention");
    }

    [Theory]
    [InlineData(1, 32)]
    [InlineData(8, 8)]
    [InlineData(37, 32)]
    [InlineData(64, 12)]
    [InlineData(70, 40)]
    public unsafe void PackKeysLaysEachPanelOutKeyByKeyAndRepeatsTheLastKeyInThePad(int rows, int width)
    {
        const int W = PackedMatrix.PanelWidth;
        int stride = width + 5;
        float[] keys = KernelAssert.Random(new Random(rows + width), rows * stride);
        var packed = new float[PackedMatrix.PanelCount(rows) * W * width];
        fixed (float* pk = keys, pp = packed) Attention.PackKeys(pk, rows, width, stride, pp);
        for (int panel = 0; panel < PackedMatrix.PanelCount(rows); panel++)
            for (int d = 0; d < width; d++)
                for (int c = 0; c < W; c++)
                    Assert.Equal(keys[Math.Min(panel * W + c, rows - 1) * stride + d], packed[(panel * width + d) * W + c]);
    }

    [Theory]
    [InlineData(1, 5)]
    [InlineData(4, 16)]
    [InlineData(7, 37)]
    [InlineData(16, 128)]
    [InlineData(13, 250)]
    public unsafe void ExpRowsGivesEachRowExpInPlacesValuesAndSumBitForBit(int count, int length)
    {
        int stride = length + 3;
        float[] rows = KernelAssert.Random(new Random(count * 31 + length), count * stride, 20f);
        float[] single = (float[])rows.Clone();
        var inverseSums = new float[count];
        fixed (float* pr = rows, ps = single, pi = inverseSums)
        {
            Attention.ExpRows(pr, stride, count, length, 0.17f, pi);
            for (int r = 0; r < count; r++)
            {
                float sum = Attention.ExpInPlace(ps + r * stride, length, 0.17f);
                Assert.Equal(1f / sum, inverseSums[r]);
            }
        }
        Assert.Equal(single, rows);
    }
}
