namespace Funnel.Bench;

internal static class Latency
{
    /// <summary>The nearest-rank percentile <paramref name="p"/> (0–1] of <paramref name="values"/>, which need not be sorted.</summary>
    public static double Percentile(IReadOnlyCollection<double> values, double p)
    {
        double[] sorted = values.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}
