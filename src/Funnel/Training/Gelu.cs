using System.Runtime.Intrinsics;
using Funnel.Numerics;

namespace Funnel.Training;

/// <summary>
/// Exact-erf GELU on saved pre-activations: the forward value (the same vector formula the fused
/// matrix epilogue applies, so outputs match inference bit for bit) and its derivative
/// gelu'(u) = Φ(u) + u·φ(u) = ½(1 + erf(u/√2)) + u·e^(−u²/2)/√(2π).
/// </summary>
internal static class Gelu
{
    private const float InvSqrt2 = 0.70710678118654752f, InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>y = gelu(u), element-wise over <paramref name="count"/> values; without SIMD the double-precision
    /// definition, as the matrix kernel's scalar fallback applies it.</summary>
    public static unsafe void Forward(ReadOnlySpan<float> u, Span<float> y, int count, int threads)
    {
        if (!Gemm.IsAccelerated)
        {
            for (int i = 0; i < count; i++) y[i] = Activations.GeluReference(u[i]);
            return;
        }
        fixed (float* pu = u, py = y) WorkSplit.Run(new ForwardJob(pu, py, count), Items(count), threads);
    }

    /// <summary>In place: g ← g · gelu'(u).</summary>
    public static unsafe void Backward(ReadOnlySpan<float> u, Span<float> g, int count, int threads)
    {
        fixed (float* pu = u, pg = g) WorkSplit.Run(new BackwardJob(pu, pg, count), Items(count), threads);
    }

    private const int Chunk = 1 << 14;

    private static int Items(int count) => (count + Chunk - 1) / Chunk;

    private readonly unsafe struct ForwardJob(float* u, float* y, int count) : IWorkItems
    {
        public void Run(int item)
        {
            int i = item * Chunk, end = Math.Min(count, i + Chunk);
            if (Vector512.IsHardwareAccelerated)
                for (; i <= end - Vector512<float>.Count; i += Vector512<float>.Count)
                    VectorMath.Gelu(Vector512.Load(u + i)).Store(y + i);
            for (; i < end; i++) y[i] = VectorMath.Gelu(u[i]);
        }
    }

    private readonly unsafe struct BackwardJob(float* u, float* g, int count) : IWorkItems
    {
        public void Run(int item)
        {
            int i = item * Chunk, end = Math.Min(count, i + Chunk);
            if (Vector512.IsHardwareAccelerated)
                for (; i <= end - Vector512<float>.Count; i += Vector512<float>.Count)
                    (Vector512.Load(g + i) * Derivative(Vector512.Load(u + i))).Store(g + i);
            for (; i < end; i++) g[i] *= Derivative(Vector512.Create(u[i])).ToScalar();
        }
    }

    private static Vector512<float> Derivative(Vector512<float> u)
    {
        Vector512<float> cdf = Vector512.FusedMultiplyAdd(VectorMath.Erf(u * Vector512.Create(InvSqrt2)), Vector512.Create(0.5f), Vector512.Create(0.5f));
        Vector512<float> pdf = VectorMath.Exp(u * u * Vector512.Create(-0.5f)) * Vector512.Create(InvSqrt2Pi);
        return Vector512.FusedMultiplyAdd(u, pdf, cdf);
    }

    /// <summary>The scalar definition of the derivative, in double precision.</summary>
    internal static double DerivativeReference(double u) =>
        0.5 * (1 + Activations.Erf(u / Math.Sqrt(2))) + u * Math.Exp(-u * u / 2) / Math.Sqrt(2 * Math.PI);
}
