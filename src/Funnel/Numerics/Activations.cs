namespace Funnel.Numerics;

/// <summary>Element-wise activations, each with its scalar definition.</summary>
internal static class Activations
{
    /// <summary>Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)), as BERT's "gelu".</summary>
    internal static float GeluReference(float x) => (float)(0.5 * x * (1.0 + Erf(x / Math.Sqrt(2.0))));

    /// <summary>erf to about double precision; .NET has no Math.Erf. A Maclaurin series below 3,
    /// the erfc continued fraction above.</summary>
    internal static double Erf(double x)
    {
        double ax = Math.Abs(x);
        double r;
        if (ax < 3.0)
        {
            // Maclaurin series: erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)); converges quickly for |x| < 3.
            double sum = ax, term = ax, x2 = ax * ax;
            for (int n = 1; n < 200; n++)
            {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            r = 2.0 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // Continued fraction for erfc, accurate for large |x|.
            double t = 0;
            for (int n = 60; n >= 1; n--) t = n / 2.0 / (ax + t);
            r = 1.0 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / (ax + t);
        }
        return x < 0 ? -r : r;
    }
}
