using Funnel.Numerics;

namespace Funnel.Training;

/// <summary>
/// y = x·Wᵀ + b with W [out × in] in PyTorch's layout. Keeps W packed for the forward kernel and Wᵀ packed
/// for the input gradient; <see cref="Repack"/> refreshes both after the optimizer changes W.
/// </summary>
internal sealed class LinearLayer
{
    private readonly PackedMatrix _packed, _packedTransposed;

    public LinearLayer(Parameter weight, Parameter bias)
    {
        Weight = weight;
        Bias = bias;
        Out = weight.Shape[0];
        In = weight.Shape[1];
        _packed = PackedMatrix.Pack(weight.Value, Out, In);
        _packedTransposed = MatMulGradients.PackTransposed(weight.Value, Out, In);
    }

    public Parameter Weight { get; }

    public Parameter Bias { get; }

    public int Out { get; }

    public int In { get; }

    public void Repack()
    {
        PackedMatrix.PackInto(Weight.Value, Out, In, In, _packed.Data);
        MatMulGradients.PackTransposedInto(Weight.Value, Out, In, _packedTransposed);
    }

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y, int threads, Epilogue epilogue = Epilogue.None, ReadOnlySpan<float> residual = default) =>
        MatMul.Linear(x, rows, _packed, Bias.Value, y, epilogue, residual, threads);

    /// <summary>Adds dYᵀ·X to W's gradient and dY's column sums to b's.</summary>
    public void AccumulateGradients(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int rows, int threads)
    {
        MatMulGradients.AccumulateWeightGradient(dy, x, rows, Out, In, Weight.Grad, threads);
        MatMulGradients.AccumulateBiasGradient(dy, rows, Bias.Grad, threads);
    }

    /// <summary>dX = dY·W, plus <paramref name="residual"/> when given (a gradient arriving by a skip connection;
    /// it may alias <paramref name="dx"/>).</summary>
    public void InputGradient(ReadOnlySpan<float> dy, int rows, Span<float> dx, int threads, ReadOnlySpan<float> residual = default) =>
        MatMul.Linear(dy, rows, _packedTransposed, [], dx, residual.IsEmpty ? Epilogue.None : Epilogue.Residual, residual, threads);
}
