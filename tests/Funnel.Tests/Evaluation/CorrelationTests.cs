using Funnel.Evaluation;

namespace Funnel.Tests.Evaluation;

/// <summary>Pearson and Spearman against values worked out by hand (as scipy.stats.pearsonr / spearmanr define them).</summary>
public class CorrelationTests
{
    private static readonly double[] X = [1, 2, 3, 4, 5];
    private static readonly double[] Y = [2, 4, 5, 4, 5];

    [Fact]
    public void AverageRanks_give_tied_values_the_mean_of_the_ranks_they_span()
    {
        Assert.Equal([2, 3.5, 3.5, 1], Correlation.AverageRanks([10, 20, 20, 5]));
        Assert.Equal([1, 2.5, 4.5, 2.5, 4.5], Correlation.AverageRanks(Y));
        Assert.Equal([2, 2, 2], Correlation.AverageRanks([7, 7, 7]));
        Assert.Equal([3, 1, 2], Correlation.AverageRanks([-0.5, -3, -1]));
    }

    [Fact]
    public void Pearson_is_the_centred_cross_product_over_the_norms()
    {
        // x̄ = 3, ȳ = 4: dx = (−2, −1, 0, 1, 2), dy = (−2, 0, 1, 0, 1); Σdxdy = 6, Σdx² = 10, Σdy² = 6 → r = 6 / √60.
        Assert.Equal(6 / Math.Sqrt(60), Correlation.Pearson(X, Y), 15);
        Assert.Equal(0.7745966692414834, Correlation.Pearson(X, Y), 15);
        Assert.Equal(-1, Correlation.Pearson(X, X.Select(v => -2 * v).ToArray()), 15);
    }

    [Fact]
    public void Spearman_with_ties_is_Pearson_of_the_average_ranks()
    {
        // Ranks of y: (1, 2.5, 4.5, 2.5, 4.5), mean 3: dy = (−2, −0.5, 1.5, −0.5, 1.5); Σdxdy = 7, Σdy² = 9, Σdx² = 10 → ρ = 7 / √90.
        Assert.Equal(7 / Math.Sqrt(90), Correlation.Spearman(X, Y), 15);
        Assert.Equal(0.7378647873726218, Correlation.Spearman(X, Y), 15);
    }

    [Fact]
    public void Spearman_sees_only_the_order()
    {
        double[] squares = [1, 4, 9, 100];
        double[] x = [1, 2, 3, 4];
        Assert.Equal(1, Correlation.Spearman(x, squares), 15);
        Assert.True(Correlation.Pearson(x, squares) < 0.9);
        Assert.Equal(-1, Correlation.Spearman(x, squares.Reverse().ToArray()), 15);
    }

    [Fact]
    public void Pearson_is_invariant_to_shift_and_positive_scale_even_far_from_zero()
    {
        var random = new Random(7);
        double[] x = Enumerable.Range(0, 200).Select(_ => random.NextDouble()).ToArray();
        double[] y = x.Select(v => v + 0.3 * random.NextDouble()).ToArray();
        double r = Correlation.Pearson(x, y);
        // Centred sums keep this exact where Σxy − n·x̄·ȳ would lose every digit at an offset of 1e9.
        Assert.Equal(r, Correlation.Pearson(x.Select(v => v * 3 + 1e9).ToArray(), y.Select(v => v * 0.5 - 1e9).ToArray()), 6);
        Assert.Equal(Correlation.Spearman(x, y), Correlation.Spearman(x.Select(Math.Exp).ToArray(), y), 15);
    }

    [Fact]
    public void A_constant_sample_has_no_correlation_and_bad_input_is_refused()
    {
        Assert.True(double.IsNaN(Correlation.Pearson(X, [3, 3, 3, 3, 3])));
        Assert.True(double.IsNaN(Correlation.Spearman([3, 3, 3, 3, 3], Y)));
        Assert.Contains("differ in length", Assert.Throws<ArgumentException>(() => Correlation.Pearson(X, [1, 2])).Message);
        Assert.Contains("at least 2", Assert.Throws<ArgumentException>(() => Correlation.Spearman([1], [1])).Message);
        Assert.Contains("value 1 is not a finite number", Assert.Throws<ArgumentException>(() => Correlation.Spearman([1, double.NaN], [1, 2])).Message);
    }
}
