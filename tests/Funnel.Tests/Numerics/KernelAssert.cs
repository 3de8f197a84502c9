namespace Funnel.Tests.Numerics;

internal static class KernelAssert
{
    public static float[] Random(Random rng, int count, float scale = 1f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return values;
    }

    /// <summary>Each value within <c>relative·magnitude[i] + absolute</c> of the expected one.</summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, ReadOnlySpan<double> magnitude, double relative, double absolute, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = relative * magnitude[i] + absolute;
            if (!(Math.Abs(expected[i] - actual[i]) <= tol))
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]} ± {tol}");
        }
    }
}
