using Funnel.Index;

namespace Funnel.Tests.Index;

/// <summary>Seeded test vectors and an independent brute-force reference in double precision.</summary>
internal static class IndexTestData
{
    /// <summary>Clustered data: centres ~ N(0, I), points = centre + spread·N(0, I), L2-normalised.</summary>
    public static float[][] Clustered(int n, int dim, int clusters, int seed, float spread = 1.5f, bool normalize = true)
    {
        var rng = new Random(seed);
        var centres = Enumerable.Range(0, clusters).Select(_ => Gaussian(rng, dim, 1f)).ToArray();
        var points = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var c = centres[rng.Next(clusters)];
            var p = Gaussian(rng, dim, spread);
            for (int j = 0; j < dim; j++) p[j] += c[j];
            if (normalize)
            {
                double norm = Math.Sqrt(p.Sum(x => (double)x * x));
                for (int j = 0; j < dim; j++) p[j] = (float)(p[j] / norm);
            }
            points[i] = p;
        }
        return points;
    }

    public static float[] Gaussian(Random rng, int dim, float sigma)
    {
        var v = new float[dim];
        for (int j = 0; j < dim; j++)
            v[j] = (float)(sigma * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return v;
    }

    /// <summary>Reference score in double: cosine, dot, or −Euclidean distance.</summary>
    public static double Score(DistanceMetric metric, float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0, l2 = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
            double d = (double)a[i] - b[i];
            l2 += d * d;
        }
        return metric switch
        {
            DistanceMetric.Cosine => dot / Math.Sqrt(na * nb),
            DistanceMetric.DotProduct => dot,
            _ => -Math.Sqrt(l2),
        };
    }

    /// <summary>Exact top-k ids (ids = positions) by brute force, optionally restricted.</summary>
    public static long[] BruteForce(float[][] data, float[] query, int k, DistanceMetric metric, Func<long, bool>? keep = null) =>
        Enumerable.Range(0, data.Length)
            .Where(i => data[i] is not null && (keep is null || keep(i)))
            .Select(i => (Id: (long)i, S: Score(metric, query, data[i])))
            .OrderByDescending(x => x.S).ThenBy(x => x.Id)
            .Take(k).Select(x => x.Id).ToArray();

    /// <summary>Mean fraction of the true top-k found in the returned top-k.</summary>
    public static double Recall(IReadOnlyList<long[]> truth, IReadOnlyList<IReadOnlyList<VectorHit>> found)
    {
        double sum = 0;
        for (int q = 0; q < truth.Count; q++)
        {
            var set = found[q].Select(h => h.Id).ToHashSet();
            sum += truth[q].Count(set.Contains) / (double)truth[q].Length;
        }
        return sum / truth.Count;
    }

    public static List<VectorRecord> Records(float[][] data, Func<int, IReadOnlyDictionary<string, string>?>? metadata = null) =>
        data.Select((v, i) => new VectorRecord(i, v, metadata?.Invoke(i))).ToList();

    public static string TempFile(string name) => Path.Combine(Path.GetTempPath(), $"funnel-index-{Guid.NewGuid():N}-{name}");
}
