using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Numerics;

/// <summary>
/// Distance kernels for the vector indexes: float dot product, squared L2 distance and int8 dot product, on pointers (the
/// indexes' rows) with span forms for everyone else. Each vector kernel has a scalar reference beside it (<c>...Reference</c>)
/// that the tests compare against; the vector paths use four independent accumulators so the adds pipeline. They are written
/// out rather than <see cref="System.Numerics.Tensors.TensorPrimitives"/> calls because the index calls them per candidate
/// on raw row pointers, and their summation order is part of the index's results.
/// </summary>
internal static partial class VectorMath
{
    /// <summary>Σ aᵢ·bᵢ.</summary>
    public static unsafe float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}", nameof(b));
        fixed (float* pa = a, pb = b) return Dot(pa, pb, a.Length);
    }

    /// <summary>Σ (aᵢ − bᵢ)².</summary>
    public static unsafe float L2Squared(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}", nameof(b));
        fixed (float* pa = a, pb = b) return L2Squared(pa, pb, a.Length);
    }

    /// <summary>Σ aᵢ·bᵢ over int8 codes, accumulated exactly in int32 (|sum| ≤ 127²·n fits for n &lt; 133,000).</summary>
    public static unsafe int DotInt8(ReadOnlySpan<sbyte> a, ReadOnlySpan<sbyte> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}", nameof(b));
        fixed (sbyte* pa = a, pb = b) return DotInt8(pa, pb, a.Length);
    }

    internal static float DotReference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    internal static float L2SquaredReference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float s = 0;
        for (int i = 0; i < a.Length; i++) { float d = a[i] - b[i]; s += d * d; }
        return s;
    }

    internal static int DotInt8Reference(ReadOnlySpan<sbyte> a, ReadOnlySpan<sbyte> b)
    {
        int s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe float Dot(float* a, float* b, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            Vector512<float> s0 = Vector512<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i <= n - 64; i += 64)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 32), Vector512.Load(b + i + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 48), Vector512.Load(b + i + 48), s3);
            }
            for (; i <= n - 16; i += 16) s0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), s0);
            float r = Vector512.Sum((s0 + s1) + (s2 + s3));
            for (; i < n; i++) r += a[i] * b[i];
            return r;
        }
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i <= n - 32; i += 32)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), s1);
                s2 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 16), Vector256.Load(b + i + 16), s2);
                s3 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 24), Vector256.Load(b + i + 24), s3);
            }
            for (; i <= n - 8; i += 8) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), s0);
            float r = Vector256.Sum((s0 + s1) + (s2 + s3));
            for (; i < n; i++) r += a[i] * b[i];
            return r;
        }
        float s = 0;
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe float L2Squared(float* a, float* b, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            Vector512<float> s0 = Vector512<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i <= n - 64; i += 64)
            {
                var d0 = Vector512.Load(a + i) - Vector512.Load(b + i);
                var d1 = Vector512.Load(a + i + 16) - Vector512.Load(b + i + 16);
                var d2 = Vector512.Load(a + i + 32) - Vector512.Load(b + i + 32);
                var d3 = Vector512.Load(a + i + 48) - Vector512.Load(b + i + 48);
                s0 = Vector512.FusedMultiplyAdd(d0, d0, s0);
                s1 = Vector512.FusedMultiplyAdd(d1, d1, s1);
                s2 = Vector512.FusedMultiplyAdd(d2, d2, s2);
                s3 = Vector512.FusedMultiplyAdd(d3, d3, s3);
            }
            for (; i <= n - 16; i += 16) { var d = Vector512.Load(a + i) - Vector512.Load(b + i); s0 = Vector512.FusedMultiplyAdd(d, d, s0); }
            float r = Vector512.Sum((s0 + s1) + (s2 + s3));
            for (; i < n; i++) { float d = a[i] - b[i]; r += d * d; }
            return r;
        }
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0;
            for (; i <= n - 16; i += 16)
            {
                var d0 = Vector256.Load(a + i) - Vector256.Load(b + i);
                var d1 = Vector256.Load(a + i + 8) - Vector256.Load(b + i + 8);
                s0 = Vector256.FusedMultiplyAdd(d0, d0, s0);
                s1 = Vector256.FusedMultiplyAdd(d1, d1, s1);
            }
            for (; i <= n - 8; i += 8) { var d = Vector256.Load(a + i) - Vector256.Load(b + i); s0 = Vector256.FusedMultiplyAdd(d, d, s0); }
            float r = Vector256.Sum(s0 + s1);
            for (; i < n; i++) { float d = a[i] - b[i]; r += d * d; }
            return r;
        }
        float s = 0;
        for (; i < n; i++) { float d = a[i] - b[i]; s += d * d; }
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe int DotInt8(sbyte* a, sbyte* b, int n)
    {
        int i = 0;
        int r = 0;
        // vpmaddwd on sign-extended int16 lanes: exact products, pairwise sums in int32 (2·127² fits).
        if (Avx512BW.IsSupported && n >= 32)
        {
            Vector512<int> s0 = Vector512<int>.Zero, s1 = s0;
            for (; i <= n - 64; i += 64)
            {
                var (al, ah) = Vector512.Widen(Vector512.Load(a + i));
                var (bl, bh) = Vector512.Widen(Vector512.Load(b + i));
                s0 += Avx512BW.MultiplyAddAdjacent(al, bl);
                s1 += Avx512BW.MultiplyAddAdjacent(ah, bh);
            }
            for (; i <= n - 32; i += 32)
                s0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(a + i)), Avx512BW.ConvertToVector512Int16(Vector256.Load(b + i)));
            r = Vector512.Sum(s0 + s1);
        }
        else if (Avx2.IsSupported && n >= 16)
        {
            Vector256<int> s0 = Vector256<int>.Zero, s1 = s0;
            for (; i <= n - 32; i += 32)
            {
                var (al, ah) = Vector256.Widen(Vector256.Load(a + i));
                var (bl, bh) = Vector256.Widen(Vector256.Load(b + i));
                s0 += Avx2.MultiplyAddAdjacent(al, bl);
                s1 += Avx2.MultiplyAddAdjacent(ah, bh);
            }
            for (; i <= n - 16; i += 16)
                s0 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(a + i)), Avx2.ConvertToVector256Int16(Vector128.Load(b + i)));
            r = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++) r += a[i] * b[i];
        return r;
    }

    /// <summary>
    /// Scales <paramref name="v"/> to unit L2 norm in place: the one normalisation of Funnel, for the encoders' Normalize
    /// module and for vectors a cosine index stores, so that both give the same bits. A zero vector (and one whose norm is
    /// not a finite float) is left as it is, because no scale makes it a unit vector. torch's <c>F.normalize</c>, which
    /// sentence-transformers uses, divides by <c>max(norm, 1e-12)</c>: the same result for zero and for every norm of at
    /// least 1e-12, which covers every real model's output; below that it leaves a vector shorter than 1, which a cosine
    /// index would score too low, so Funnel divides by the norm itself.
    /// </summary>
    public static void Normalize(Span<float> v)
    {
        float norm = System.Numerics.Tensors.TensorPrimitives.Norm(v);
        if (norm > 0 && float.IsFinite(norm)) System.Numerics.Tensors.TensorPrimitives.Divide(v, norm, v);
    }
}
