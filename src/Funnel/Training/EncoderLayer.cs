namespace Funnel.Training;

/// <summary>One transformer block's trainable pieces: fused QKV projection, attention output projection and its
/// LayerNorm, the feed-forward pair and its LayerNorm.</summary>
internal sealed record EncoderLayer(
    LinearLayer Qkv, LinearLayer AttentionOutput, LayerNormLayer AttentionNorm,
    LinearLayer Intermediate, LinearLayer Output, LayerNormLayer OutputNorm)
{
    public IEnumerable<Parameter> Parameters =>
    [
        Qkv.Weight, Qkv.Bias, AttentionOutput.Weight, AttentionOutput.Bias, AttentionNorm.Gamma, AttentionNorm.Beta,
        Intermediate.Weight, Intermediate.Bias, Output.Weight, Output.Bias, OutputNorm.Gamma, OutputNorm.Beta,
    ];
}

/// <summary>What one layer's forward pass saves for its backward pass; the layer's input and its LayerNorm
/// outputs are recomputed from the normalised rows.</summary>
internal sealed class SavedLayer(int tokens, int hidden, int intermediate) : IDisposable
{
    public PooledArray Qkv { get; } = new(tokens * 3 * hidden);
    public PooledArray Context { get; } = new(tokens * hidden);
    public PooledArray AttentionNormalized { get; } = new(tokens * hidden);
    public PooledArray AttentionInverseStd { get; } = new(tokens);
    public PooledArray PreActivation { get; } = new(tokens * intermediate);
    public PooledArray OutputNormalized { get; } = new(tokens * hidden);
    public PooledArray OutputInverseStd { get; } = new(tokens);

    public void Dispose()
    {
        Qkv.Dispose();
        Context.Dispose();
        AttentionNormalized.Dispose();
        AttentionInverseStd.Dispose();
        PreActivation.Dispose();
        OutputNormalized.Dispose();
        OutputInverseStd.Dispose();
    }
}

/// <summary>A rented float buffer of an exact length (the pool may hand out a longer array).</summary>
internal sealed class PooledArray(int length) : IDisposable
{
    private float[]? _array = System.Buffers.ArrayPool<float>.Shared.Rent(Math.Max(1, length));

    public int Length { get; } = length;

    public Span<float> Span => _array.AsSpan(0, Length);

    public void Dispose()
    {
        if (_array == null) return;
        System.Buffers.ArrayPool<float>.Shared.Return(_array);
        _array = null;
    }
}
