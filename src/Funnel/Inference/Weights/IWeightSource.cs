namespace Funnel.Inference.Weights;

/// <summary>
/// A model's weights as the encoder reads them: fp32 tensors by Hugging Face name (with or without the
/// <c>bert.</c> prefix that task heads add) in Hugging Face layout ([out, in] for linear weights),
/// whatever the files store. Errors are <see cref="ModelFormatException"/>s naming the file and tensor.
/// </summary>
internal interface IWeightSource : IDisposable
{
    /// <summary>The files whose bytes are the weights, in a fixed order (what <see cref="ModelFingerprint"/> hashes).</summary>
    IReadOnlyList<string> Paths { get; }

    /// <summary>Reads a tensor into <paramref name="destination"/>, checking its shape and that every value is finite.</summary>
    void Read(string name, int[] shape, Span<float> destination);

    /// <summary>Whether the weights hold the tensor (optional parts: a bi-encoder may come without a pooler).</summary>
    bool Contains(string name);
}
