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
}
