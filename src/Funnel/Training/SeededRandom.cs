using Funnel.Inference;

namespace Funnel.Training;

/// <summary>
/// SplitMix64: a small, fully specified generator for the training run's shuffles and samples, so the same seed
/// gives the same order on every machine and .NET version. Streams are derived from (seed, purpose, indices), so
/// resuming at step n needs no saved generator state.
/// </summary>
internal sealed class SeededRandom(ulong seed)
{
    private const ulong Golden = 0x9E3779B97F4A7C15;
    private ulong _state = seed;

    /// <summary>A stream for one purpose: the seed hashed with a label and up to three indices.</summary>
    public static SeededRandom For(ulong seed, string purpose, long a = 0, long b = 0, long c = 0) =>
        new(Key(seed, purpose, a, b, c));

    public static ulong Key(ulong seed, string purpose, long a = 0, long b = 0, long c = 0)
    {
        ulong h = SeededCheckpoint.Mix64(unchecked(seed * Golden + SeededCheckpoint.Fnv1a64(purpose)));
        h = SeededCheckpoint.Mix64(h ^ (ulong)a);
        h = SeededCheckpoint.Mix64(h ^ (ulong)b);
        return SeededCheckpoint.Mix64(h ^ (ulong)c);
    }

    public ulong Next() => SeededCheckpoint.Mix64(_state += Golden);

    /// <summary>Uniform in [0, n) (Lemire's multiply-shift on 64 bits: bias below 2⁻³², irrelevant here).</summary>
    public int NextInt(int n) => (int)((UInt128)Next() * (ulong)n >> 64);

    /// <summary>A uniformly random permutation of 0 … n−1 (Fisher–Yates).</summary>
    public int[] Permutation(int n)
    {
        int[] order = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary><paramref name="count"/> distinct items of <paramref name="items"/>, in draw order.</summary>
    public List<T> Sample<T>(IReadOnlyList<T> items, int count)
    {
        var pool = items.ToList();
        var picked = new List<T>(Math.Min(count, pool.Count));
        for (int k = 0; k < count && pool.Count > 0; k++)
        {
            int j = NextInt(pool.Count);
            picked.Add(pool[j]);
            pool[j] = pool[^1];
            pool.RemoveAt(pool.Count - 1);
        }
        return picked;
    }
}
