using Funnel.Inference;
using Funnel.Numerics;
using Funnel.Tests.Numerics;
using Funnel.Training;

namespace Funnel.Tests.Training;

public class LayerTests
{
    private static SequenceBatch Batch(params int[] lengths) =>
        SequenceBatch.Create(lengths.Select(n => new TokenSequence(new int[n], new int[n])).ToList(), lengths.Select((_, i) => (ulong)(i * 977 + 13)).ToList());

    [Theory]
    [InlineData(0.0f, 2, 8)]
    [InlineData(0.0f, 4, 32)]
    [InlineData(0.3f, 2, 8)]
    [InlineData(0.1f, 3, 32)]
    public void AttentionBackwardAgreesWithTheScalarReference(float p, int heads, int headDim)
    {
        SequenceBatch batch = Batch(1, 7, 40);
        int hidden = heads * headDim, tokens = batch.Tokens, layer = 1;
        var rng = new Random(heads * 100 + headDim);
        float[] qkv = KernelAssert.Random(rng, tokens * 3 * hidden, 1.5f), dContext = KernelAssert.Random(rng, tokens * hidden);
        var dropout = new Dropout(p);
        var actual = new float[tokens * 3 * hidden];
        AttentionLayer.Backward(qkv, dContext, batch, heads, headDim, actual, dropout, layer, threads: 2);
        for (int s = 0; s < batch.Count; s++)
        {
            int start = batch.Offsets[s], length = batch.Lengths[s];
            var expected = new float[length * 3 * hidden];
            AttentionLayer.BackwardReference(qkv.AsSpan(start * 3 * hidden), dContext.AsSpan(start * hidden), length, heads, headDim, expected,
                AttentionLayer.Keep(dropout, batch, s, layer));
            float[] got = actual.AsSpan(start * 3 * hidden, length * 3 * hidden).ToArray();
            double scale = expected.Max(Math.Abs);
            KernelAssert.Close(expected, got, Enumerable.Repeat(scale, expected.Length).ToArray(), 2e-6, 1e-7, $"sequence {s} (length {length})");
        }
    }

    [Fact]
    public void AttentionForwardDropsProbabilitiesWithTheBackwardPassMasks()
    {
        SequenceBatch batch = Batch(5, 33);
        int heads = 2, headDim = 16, hidden = heads * headDim, tokens = batch.Tokens;
        float[] qkv = KernelAssert.Random(new Random(2), tokens * 3 * hidden);
        var dropout = new Dropout(0.25f);
        var context = new float[tokens * hidden];
        AttentionLayer.Forward(qkv, batch, heads, headDim, context, dropout, layer: 0, threads: 2);
        for (int s = 0; s < batch.Count; s++)
        {
            int start = batch.Offsets[s], length = batch.Lengths[s];
            var expected = new float[length * hidden];
            AttentionLayer.ForwardReference(qkv.AsSpan(start * 3 * hidden), length, heads, headDim, expected, AttentionLayer.Keep(dropout, batch, s, 0));
            KernelAssert.Close(expected, context.AsSpan(start * hidden, length * hidden), Enumerable.Repeat(1.0, expected.Length).ToArray(), 1e-5, 0, $"sequence {s}");
        }
    }

    [Fact]
    public void DropoutKeepsOneMinusPAndScalesThem()
    {
        var dropout = new Dropout(0.1f);
        var values = Enumerable.Repeat(1f, 100_003).ToArray();
        ulong stream = Dropout.RowStream(42, DropoutSite.AttentionOutput, 3, 7);
        dropout.Apply(values, stream);
        int kept = values.Count(v => v != 0);
        Assert.InRange(kept / (double)values.Length, 0.897, 0.903); // ±3.3σ of a binomial(1e5, 0.9)
        Assert.All(values.Where(v => v != 0), v => Assert.Equal(1f / 0.9f, v));
        for (int i = 0; i < values.Length; i++) Assert.Equal(values[i] != 0, dropout.Keep(stream, i)); // vector path = definition
        var again = Enumerable.Repeat(1f, 100_003).ToArray();
        dropout.Apply(again, stream);
        Assert.Equal(values, again);
        dropout.Apply(again = Enumerable.Repeat(1f, 64).ToArray(), Dropout.RowStream(42, DropoutSite.AttentionOutput, 3, 8));
        Assert.NotEqual(values.Take(64), again); // another row, another mask
    }

    [Fact]
    public void GeluDerivativeMatchesItsDefinition()
    {
        float[] u = Enumerable.Range(-600, 1201).Select(i => i / 100f).ToArray();
        float[] g = Enumerable.Repeat(1f, u.Length).ToArray();
        Gelu.Backward(u, g, u.Length, threads: 1);
        for (int i = 0; i < u.Length; i++) Assert.Equal(Gelu.DerivativeReference(u[i]), g[i], 2e-6);
        // And the derivative of the forward values: central differences of gelu.
        for (int i = 1; i < u.Length - 1; i += 50)
        {
            double h = 1e-3, fd = (Activations.GeluReference(u[i] + (float)h) - Activations.GeluReference(u[i] - (float)h)) / (2 * h);
            Assert.Equal(fd, g[i], 1e-3);
        }
    }

    [Fact]
    public void LayerNormBackwardMatchesFiniteDifferences()
    {
        int rows = 3, d = 40;
        var rng = new Random(9);
        var gamma = new Parameter("g", [d], KernelAssert.Random(rng, d, 2f), weightDecay: false);
        var beta = new Parameter("b", [d], KernelAssert.Random(rng, d), weightDecay: false);
        var norm = new LayerNormLayer(gamma, beta, 1e-12f);
        float[] x = KernelAssert.Random(rng, rows * d, 3f), dy = KernelAssert.Random(rng, rows * d);
        float[] xhat = new float[rows * d], inv = new float[rows], y = new float[rows * d], dx = new float[rows * d];
        norm.Forward(x, rows, xhat, inv, y, threads: 1);
        norm.Backward(dy, xhat, inv, rows, dx, threads: 1);
        double Loss(double[] input)
        {
            double total = 0;
            for (int r = 0; r < rows; r++)
            {
                double mean = 0, var = 0;
                for (int i = 0; i < d; i++) mean += input[r * d + i] / d;
                for (int i = 0; i < d; i++) var += (input[r * d + i] - mean) * (input[r * d + i] - mean) / d;
                for (int i = 0; i < d; i++) total += dy[r * d + i] * ((input[r * d + i] - mean) / Math.Sqrt(var + 1e-12) * gamma.Value[i] + beta.Value[i]);
            }
            return total;
        }
        double[] at = x.Select(v => (double)v).ToArray();
        for (int i = 0; i < x.Length; i += 7)
        {
            double keep = at[i], h = 1e-6;
            at[i] = keep + h;
            double up = Loss(at);
            at[i] = keep - h;
            double down = Loss(at);
            at[i] = keep;
            Assert.Equal((up - down) / (2 * h), dx[i], 1e-4);
        }
        for (int i = 0; i < d; i++)
        {
            double dg = 0, db = 0;
            for (int r = 0; r < rows; r++)
            {
                dg += dy[r * d + i] * xhat[r * d + i];
                db += dy[r * d + i];
            }
            Assert.Equal(dg, gamma.Grad[i], 1e-5);
            Assert.Equal(db, beta.Grad[i], 1e-5);
        }
    }
}
