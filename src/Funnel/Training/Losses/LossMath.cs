namespace Funnel.Training.Losses;

/// <summary>The numerics the losses share.</summary>
internal static class LossMath
{
    /// <summary>log Σ exp(values), shifted by the maximum (−∞ for no values or all −∞).</summary>
    public static double LogSumExp(ReadOnlySpan<double> values)
    {
        double max = double.NegativeInfinity;
        foreach (double v in values) max = Math.Max(max, v);
        if (double.IsNegativeInfinity(max)) return max;
        double sum = 0;
        foreach (double v in values) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
}
