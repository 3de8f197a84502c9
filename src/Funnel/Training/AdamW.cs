using System.Runtime.Intrinsics;
using Funnel.Numerics;

namespace Funnel.Training;

/// <summary>
/// torch.optim.AdamW (β = 0.9, 0.999, ε = 1e-8) in float32 with torch's order of operations: decoupled weight decay
/// p ← p·(1 − lr·λ) on the parameters marked for it (not biases or LayerNorm), then m ← β₁m + (1 − β₁)g,
/// v ← β₂v + (1 − β₂)g², p ← p − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε). Every element is updated (a zero
/// gradient still moves a parameter through its moments, as for torch's dense embedding gradients), element by
/// element, so the result does not depend on the thread count.
/// </summary>
internal sealed class AdamW
{
    public const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;

    private readonly IReadOnlyList<Parameter> _parameters;

    public AdamW(IReadOnlyList<Parameter> parameters, double weightDecay)
    {
        _parameters = parameters;
        WeightDecay = weightDecay;
        FirstMoments = parameters.Select(p => new float[p.Value.Length]).ToArray();
        SecondMoments = parameters.Select(p => new float[p.Value.Length]).ToArray();
    }

    public double WeightDecay { get; }

    /// <summary>Optimizer steps taken (torch's per-parameter <c>step</c>).</summary>
    public int Steps { get; set; }

    /// <summary>exp_avg per parameter, in parameter order.</summary>
    public float[][] FirstMoments { get; }

    /// <summary>exp_avg_sq per parameter, in parameter order.</summary>
    public float[][] SecondMoments { get; }

    /// <summary>One step at learning rate <paramref name="lr"/> from the parameters' current gradients, each multiplied by
    /// <paramref name="gradientScale"/> first (the clipping coefficient: torch scales the gradients in place before the step,
    /// which gives the same float values).</summary>
    public void Step(double lr, float gradientScale, int threads)
    {
        Steps++;
        double bias1 = 1 - Math.Pow(Beta1, Steps), bias2 = 1 - Math.Pow(Beta2, Steps);
        var constants = new StepConstants(
            Decay: (float)(1 - lr * WeightDecay), Beta1: (float)Beta1, OneMinusBeta1: (float)(1 - Beta1), Beta2: (float)Beta2,
            OneMinusBeta2: (float)(1 - Beta2), Bias2Sqrt: (float)Math.Sqrt(bias2), Epsilon: (float)Epsilon, StepSize: (float)(lr / bias1),
            GradientScale: gradientScale);
        var chunks = new List<(int Parameter, int Start, int Length)>();
        for (int i = 0; i < _parameters.Count; i++)
            for (int start = 0; start < _parameters[i].Value.Length; start += Chunk)
                chunks.Add((i, start, Math.Min(Chunk, _parameters[i].Value.Length - start)));
        WorkSplit.Run(new StepJob(this, chunks, constants), chunks.Count, threads);
    }

    private const int Chunk = 1 << 16;

    private readonly record struct StepConstants(float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float Bias2Sqrt,
        float Epsilon, float StepSize, float GradientScale);

    private readonly struct StepJob(AdamW optimizer, List<(int Parameter, int Start, int Length)> chunks, StepConstants c) : IWorkItems
    {
        public void Run(int item)
        {
            var (index, start, length) = chunks[item];
            Parameter p = optimizer._parameters[index];
            Update(p.Value.AsSpan(start, length), p.Grad.AsSpan(start, length), optimizer.FirstMoments[index].AsSpan(start, length),
                optimizer.SecondMoments[index].AsSpan(start, length), p.WeightDecay ? c.Decay : 1f, c);
        }
    }

    private static void Update(Span<float> value, ReadOnlySpan<float> grad, Span<float> m, Span<float> v, float decay, StepConstants c)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= value.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> g = Vector512.Create(grad[i..]) * Vector512.Create(c.GradientScale);
                Vector512<float> p = Vector512.Create(value[i..]) * Vector512.Create(decay);
                Vector512<float> mi = Vector512.FusedMultiplyAdd(g, Vector512.Create(c.OneMinusBeta1), Vector512.Create(m[i..]) * Vector512.Create(c.Beta1));
                Vector512<float> vi = Vector512.FusedMultiplyAdd(g * g, Vector512.Create(c.OneMinusBeta2), Vector512.Create(v[i..]) * Vector512.Create(c.Beta2));
                Vector512<float> denom = Vector512.Sqrt(vi) / Vector512.Create(c.Bias2Sqrt) + Vector512.Create(c.Epsilon);
                p = Vector512.FusedMultiplyAdd(mi / denom, Vector512.Create(-c.StepSize), p);
                p.CopyTo(value[i..]);
                mi.CopyTo(m[i..]);
                vi.CopyTo(v[i..]);
            }
        }
        for (; i < value.Length; i++)
        {
            float g = grad[i] * c.GradientScale;
            float p = value[i] * decay;
            m[i] = MathF.FusedMultiplyAdd(g, c.OneMinusBeta1, m[i] * c.Beta1);
            v[i] = MathF.FusedMultiplyAdd(g * g, c.OneMinusBeta2, v[i] * c.Beta2);
            value[i] = MathF.FusedMultiplyAdd(m[i] / (MathF.Sqrt(v[i]) / c.Bias2Sqrt + c.Epsilon), -c.StepSize, p);
        }
    }

    /// <summary>
    /// torch.nn.utils.clip_grad_norm_'s factor: the L2 norm of all gradients together (<paramref name="norm"/>) and
    /// max_norm / (norm + 1e-6) when that is below 1, else 1. <see cref="Step"/> applies it.
    /// </summary>
    public static float ClipCoefficient(IReadOnlyList<Parameter> parameters, double maxNorm, out double norm)
    {
        double squares = 0;
        foreach (Parameter p in parameters) squares += p.GradientSquaredNorm();
        norm = Math.Sqrt(squares);
        double coefficient = maxNorm / (norm + 1e-6);
        return coefficient < 1 ? (float)coefficient : 1f;
    }
}

/// <summary>Hugging Face's get_linear_schedule_with_warmup: the learning rate rises linearly from 0 over the warmup
/// steps, then falls linearly to 0 at the last step.</summary>
internal static class LinearSchedule
{
    /// <summary>The factor for optimizer step <paramref name="step"/> (0-based: the first step's rate is 0 when there is a warmup).</summary>
    public static double Factor(int step, int warmupSteps, int totalSteps) =>
        step < warmupSteps
            ? (double)step / Math.Max(1, warmupSteps)
            : Math.Max(0, (double)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps));

    /// <summary>Warmup steps for a ratio of the total, rounded up as Hugging Face's Trainer does.</summary>
    public static int WarmupSteps(double ratio, int totalSteps) => (int)Math.Ceiling(ratio * totalSteps);
}
