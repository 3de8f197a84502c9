using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Numerics;

/// <summary>
/// Vectorised exp, erf and GELU for the kernels' epilogues and softmax. Each has the scalar
/// definition beside it (<see cref="Math.Exp"/>, <see cref="Activations.Erf"/>) and a test that
/// they agree. The Vector512 and Vector256 bodies are the same formula at two widths, as in
/// TensorPrimitives; the scalar forms are used for tails.
/// </summary>
internal static partial class VectorMath
{
    // exp: x = n·ln2 + r with |r| ≤ ln2/2, exp(r) by Cephes' degree-6 expf polynomial, 2ⁿ by
    // building the exponent bits. The clamp keeps n in [-126, 127] so 2ⁿ stays a normal float.
    private const float ExpMax = 88.3762626647949f, ExpMin = -87.3365447505531f;
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float E0 = 1.9875691500E-4f, E1 = 1.3981999507E-3f, E2 = 8.3334519073E-3f,
        E3 = 4.1665795894E-2f, E4 = 1.6666665459E-1f, E5 = 5.0000001201E-1f;

    // exp2: y = n + f with n = round(y) and |f| ≤ 1/2; 2^f = e^(f·ln2) by its Taylor series to degree 7 (truncation
    // error below 6e-9 relative), 2ⁿ as in exp. The floor keeps every result a normal float, as exp's clamp does.
    private const float Exp2Min = -125f, Exp2Max = 127f;
    private const float T1 = 0.693147180559945f, T2 = 0.240226506959101f, T3 = 5.55041086648216e-2f,
        T4 = 9.61812910762848e-3f, T5 = 1.33335581464284e-3f, T6 = 1.54035303933816e-4f, T7 = 1.52527338040598e-5f;

    // erf: Eigen's rational approximation x·P(x²)/Q(x²) on [-4, 4] (erf is ±1 in float beyond);
    // max abs error 4.2e-7 against a double-precision erf.
    private const float ErfClamp = 4f;
    private const float A1 = -1.60960333262415e-02f, A3 = -2.95459980854025e-03f, A5 = -7.34990630326855e-04f,
        A7 = -5.69250639462346e-05f, A9 = -2.10102402082508e-06f, A11 = 2.77068142495902e-08f, A13 = -2.72614225801306e-10f;
    private const float B0 = -1.42647390514189e-02f, B2 = -7.37332916720468e-03f, B4 = -1.68282697438203e-03f,
        B6 = -2.13374055278905e-04f, B8 = -1.45660718464996e-05f;

    private const float InvSqrt2 = 0.70710678118654752f;

    /// <summary>min(max(x, lo), hi) by the raw vmaxps/vminps: Vector512.Min/Max's IEEE 754-2019 forms add
    /// NaN and signed-zero fixups to every call. These return their second operand when either is NaN,
    /// so with x second a NaN still comes through.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Clamp(Vector512<float> x, float lo, float hi)
        => Avx512F.IsSupported
            ? Avx512F.Min(Vector512.Create(hi), Avx512F.Max(Vector512.Create(lo), x))
            : Vector512.Min(Vector512.Max(x, Vector512.Create(lo)), Vector512.Create(hi));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Clamp(Vector256<float> x, float lo, float hi)
        => Avx.IsSupported
            ? Avx.Min(Vector256.Create(hi), Avx.Max(Vector256.Create(lo), x))
            : Vector256.Min(Vector256.Max(x, Vector256.Create(lo)), Vector256.Create(hi));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Clamp(x, ExpMin, ExpMax);
        Vector512<float> n = Vector512.Round(x * Vector512.Create(Log2E));
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        Vector512<float> p = Vector512.FusedMultiplyAdd(Vector512.Create(E0), r, Vector512.Create(E1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E5));
        p = Vector512.FusedMultiplyAdd(p, r * r, r + Vector512<float>.One);
        // vscalefps multiplies by 2ⁿ in one instruction; the portable form builds 2ⁿ's bits, and
        // ConvertToInt32's saturation handling costs three more.
        if (Avx512F.IsSupported) return Avx512F.Scale(p, n);
        Vector512<int> bits = (Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23;
        return p * bits.AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Clamp(x, ExpMin, ExpMax);
        Vector256<float> n = Vector256.Round(x * Vector256.Create(Log2E));
        Vector256<float> r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        Vector256<float> p = Vector256.FusedMultiplyAdd(Vector256.Create(E0), r, Vector256.Create(E1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E5));
        p = Vector256.FusedMultiplyAdd(p, r * r, r + Vector256<float>.One);
        Vector256<int> bits = (Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23;
        return p * bits.AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp2(Vector512<float> y)
    {
        // vscalefps saturates to ∞ by itself, so only the floor is needed there.
        y = Avx512F.IsSupported ? Avx512F.Max(Vector512.Create(Exp2Min), y) : Clamp(y, Exp2Min, Exp2Max);
        Vector512<float> n = Vector512.Round(y), f = y - n;
        Vector512<float> p = Vector512.FusedMultiplyAdd(Vector512.Create(T7), f, Vector512.Create(T6));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(T5));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(T4));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(T3));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(T2));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(T1));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512<float>.One);
        if (Avx512F.IsSupported) return Avx512F.Scale(p, n);
        Vector512<int> bits = (Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23;
        return p * bits.AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp2(Vector256<float> y)
    {
        y = Clamp(y, Exp2Min, Exp2Max);
        Vector256<float> n = Vector256.Round(y), f = y - n;
        Vector256<float> p = Vector256.FusedMultiplyAdd(Vector256.Create(T7), f, Vector256.Create(T6));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(T5));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(T4));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(T3));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(T2));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(T1));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256<float>.One);
        Vector256<int> bits = (Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23;
        return p * bits.AsSingle();
    }

    /// <summary>Scalar tail of <see cref="Exp2(Vector512{float})"/>.</summary>
    public static float Exp2(float y) => Exp2(Vector256.Create(y)).ToScalar();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Erf(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-ErfClamp)), Vector512.Create(ErfClamp));
        Vector512<float> x2 = x * x;
        Vector512<float> p = Vector512.FusedMultiplyAdd(Vector512.Create(A13), x2, Vector512.Create(A11));
        p = Vector512.FusedMultiplyAdd(p, x2, Vector512.Create(A9));
        p = Vector512.FusedMultiplyAdd(p, x2, Vector512.Create(A7));
        p = Vector512.FusedMultiplyAdd(p, x2, Vector512.Create(A5));
        p = Vector512.FusedMultiplyAdd(p, x2, Vector512.Create(A3));
        p = Vector512.FusedMultiplyAdd(p, x2, Vector512.Create(A1));
        Vector512<float> q = Vector512.FusedMultiplyAdd(Vector512.Create(B8), x2, Vector512.Create(B6));
        q = Vector512.FusedMultiplyAdd(q, x2, Vector512.Create(B4));
        q = Vector512.FusedMultiplyAdd(q, x2, Vector512.Create(B2));
        q = Vector512.FusedMultiplyAdd(q, x2, Vector512.Create(B0));
        return x * p / q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Erf(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-ErfClamp)), Vector256.Create(ErfClamp));
        Vector256<float> x2 = x * x;
        Vector256<float> p = Vector256.FusedMultiplyAdd(Vector256.Create(A13), x2, Vector256.Create(A11));
        p = Vector256.FusedMultiplyAdd(p, x2, Vector256.Create(A9));
        p = Vector256.FusedMultiplyAdd(p, x2, Vector256.Create(A7));
        p = Vector256.FusedMultiplyAdd(p, x2, Vector256.Create(A5));
        p = Vector256.FusedMultiplyAdd(p, x2, Vector256.Create(A3));
        p = Vector256.FusedMultiplyAdd(p, x2, Vector256.Create(A1));
        Vector256<float> q = Vector256.FusedMultiplyAdd(Vector256.Create(B8), x2, Vector256.Create(B6));
        q = Vector256.FusedMultiplyAdd(q, x2, Vector256.Create(B4));
        q = Vector256.FusedMultiplyAdd(q, x2, Vector256.Create(B2));
        q = Vector256.FusedMultiplyAdd(q, x2, Vector256.Create(B0));
        return x * p / q;
    }

    /// <summary>Exact-erf GELU, 0.5·x·(1 + erf(x/√2)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Gelu(Vector512<float> x)
    {
        Vector512<float> half = x * Vector512.Create(0.5f);
        return Vector512.FusedMultiplyAdd(half, Erf(x * Vector512.Create(InvSqrt2)), half);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Gelu(Vector256<float> x)
    {
        Vector256<float> half = x * Vector256.Create(0.5f);
        return Vector256.FusedMultiplyAdd(half, Erf(x * Vector256.Create(InvSqrt2)), half);
    }

    /// <summary>Scalar tail of <see cref="Gelu(Vector512{float})"/>: the same rational erf, one lane.</summary>
    public static float Gelu(float x) => Gelu(Vector256.Create(x)).ToScalar();

    /// <summary>Scalar tail of <see cref="Exp(Vector512{float})"/>.</summary>
    public static float Exp(float x) => Exp(Vector256.Create(x)).ToScalar();

    /// <summary>
    /// In place: <c>values[i] = exp(scale·values[i] − shift)</c>; returns their sum. It is computed as
    /// 2^(values[i]·factor + offset) (<see cref="Exp2Terms"/>), which saves exp's clamp pair, its multiply by log₂e and
    /// its two-step reduction by ln2: five of seventeen vector operations. The offset's rounding scales every value
    /// of a call alike, which a softmax divides out.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ExpScaledSum(Span<float> values, float scale, float shift)
    {
        var (factor, offset) = Exp2Terms(scale, shift);
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && values.Length >= Vector512<float>.Count)
        {
            var acc = Vector512<float>.Zero;
            var s = Vector512.Create(offset);
            var c = Vector512.Create(factor);
            ref float v0 = ref values[0];
            for (; i <= values.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var e = Exp2(Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v0, (nuint)i), c, s));
                e.StoreUnsafe(ref v0, (nuint)i);
                acc += e;
            }
            sum = HorizontalSum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && values.Length >= Vector256<float>.Count)
        {
            var acc = Vector256<float>.Zero;
            var s = Vector256.Create(offset);
            var c = Vector256.Create(factor);
            ref float v0 = ref values[0];
            for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var e = Exp2(Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v0, (nuint)i), c, s));
                e.StoreUnsafe(ref v0, (nuint)i);
                acc += e;
            }
            sum = Vector256.Sum(acc);
        }
        return ExpScaledTail(values, i, factor, offset, sum);
    }

    /// <summary>The sum of the lanes by halving: Vector512.Sum sums each 128-bit quarter on its own, about 25 instructions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(Vector512<float> v)
    {
        Vector256<float> s8 = v.GetLower() + v.GetUpper();
        Vector128<float> s4 = s8.GetLower() + s8.GetUpper();
        s4 += Vector128.Shuffle(s4, Vector128.Create(2, 3, 0, 1));
        return (s4 + Vector128.Shuffle(s4, Vector128.Create(1, 0, 3, 2))).ToScalar();
    }

    /// <summary>exp(scale·v − shift) as 2^(v·Factor + Offset).</summary>
    public static (float Factor, float Offset) Exp2Terms(float scale, float shift) => (scale * Log2E, -shift * Log2E);

    /// <summary><see cref="ExpScaledSum"/> one value at a time from <paramref name="from"/> on, added to <paramref name="sum"/>.</summary>
    public static float ExpScaledTail(Span<float> values, int from, float factor, float offset, float sum)
    {
        for (int i = from; i < values.Length; i++)
        {
            float e = Exp2(MathF.FusedMultiplyAdd(values[i], factor, offset));
            values[i] = e;
            sum += e;
        }
        return sum;
    }
}
