using Funnel.Inference;

namespace Funnel.Training;

/// <summary>
/// Deterministic normal draws for initialising new weights (Hugging Face's <c>_init_weights</c>: Linear weights
/// ~ N(0, initializer_range), biases 0): element i of a tensor is a Box–Muller draw from two 53-bit uniforms of
/// a counter-based hash of (seed, tensor name, i), so a tensor's values do not depend on what else is drawn.
/// </summary>
internal static class SeededNormal
{
    private const ulong Golden = 0x9E3779B97F4A7C15;

    public static float[] Draw(ulong seed, string name, int count, double std)
    {
        ulong stream = SeededCheckpoint.Mix64(unchecked(seed * Golden + SeededCheckpoint.Fnv1a64(name)));
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = Uniform(stream, 2 * (ulong)i + 1), u2 = Uniform(stream, 2 * (ulong)i + 2);
            values[i] = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return values;
    }

    /// <summary>A uniform draw in (0, 1].</summary>
    private static double Uniform(ulong stream, ulong counter) =>
        ((SeededCheckpoint.Mix64(unchecked(stream + counter * Golden)) >> 11) + 1) / 9007199254740992.0;
}
