namespace Funnel.Evaluation;

/// <summary>
/// Correlation coefficients as scipy.stats computes them: <see cref="Pearson"/> (<c>pearsonr</c>) and <see cref="Spearman"/>
/// (<c>spearmanr</c>: Pearson's r of the ranks, tied values sharing their average rank). STS benchmarks report Spearman's
/// ρ between model similarities and gold scores.
/// </summary>
public static class Correlation
{
    /// <summary>Pearson's r of two equally long samples; NaN when either is constant (scipy returns NaN there too).</summary>
    /// <exception cref="ArgumentException">The lengths differ, there are fewer than 2 values, or a value is NaN or infinite.</exception>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        Check(x, y);
        double meanX = Mean(x), meanY = Mean(y);
        // Centred sums (two passes) rather than Σxy − n·x̄·ȳ, which cancels catastrophically when the means are large.
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            double dx = x[i] - meanX, dy = y[i] - meanY;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        if (sxx == 0 || syy == 0) return double.NaN;
        return Math.Clamp(sxy / Math.Sqrt(sxx * syy), -1, 1);
    }

    /// <summary>Spearman's ρ: <see cref="Pearson"/> of the <see cref="AverageRanks"/> of both samples.</summary>
    /// <exception cref="ArgumentException">As <see cref="Pearson"/>.</exception>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        Check(x, y);
        return Pearson(AverageRanks(x), AverageRanks(y));
    }

    /// <summary>
    /// The 1-based rank of each value in ascending order, tied values all getting the mean of the ranks they span
    /// (scipy.stats.rankdata's default, <c>method='average'</c>): [10, 20, 20, 5] → [2, 3.5, 3.5, 1].
    /// </summary>
    public static double[] AverageRanks(IReadOnlyList<double> values)
    {
        int[] order = Enumerable.Range(0, values.Count).ToArray();
        Array.Sort(order, (a, b) => values[a].CompareTo(values[b]));
        var ranks = new double[values.Count];
        for (int start = 0; start < order.Length;)
        {
            int end = start + 1;
            while (end < order.Length && values[order[end]] == values[order[start]]) end++;
            // Positions start … end − 1 hold equal values: ranks start + 1 … end, whose mean is this.
            double rank = (start + 1 + end) / 2.0;
            for (int i = start; i < end; i++) ranks[order[i]] = rank;
            start = end;
        }
        return ranks;
    }

    private static void Check(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException($"the samples differ in length ({x.Count} and {y.Count})", nameof(y));
        if (x.Count < 2) throw new ArgumentException($"a correlation needs at least 2 pairs of values (got {x.Count})", nameof(x));
        for (int i = 0; i < x.Count; i++)
            if (!double.IsFinite(x[i]) || !double.IsFinite(y[i]))
                throw new ArgumentException($"value {i} is not a finite number ({x[i]}, {y[i]})", double.IsFinite(x[i]) ? nameof(y) : nameof(x));
    }

    private static double Mean(IReadOnlyList<double> values)
    {
        double sum = 0;
        for (int i = 0; i < values.Count; i++) sum += values[i];
        return sum / values.Count;
    }
}
