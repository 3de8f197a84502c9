using Funnel.Inference;
using Funnel.Retrieval;

namespace Funnel.Tests.Retrieval;

/// <summary>
/// Small random-weight models (real tokenizer and architecture, hidden 32) for pipeline tests: two bi-encoders with
/// different seeds and a cross-encoder, generated once per test class, plus real NFCorpus documents.
/// </summary>
public sealed class SmallModels : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("funnel-small-models-").FullName;
    public string BiEncoderPath => Path.Combine(Root, "bi-1");
    public string OtherBiEncoderPath => Path.Combine(Root, "bi-2");
    public string CrossEncoderPath => Path.Combine(Root, "cross");
    public SentenceEncoder BiEncoder { get; }
    public SentenceEncoder OtherBiEncoder { get; }
    public CrossEncoder CrossEncoder { get; }

    /// <summary>The first 60 NFCorpus documents (long enough to need several 48-wordpiece chunks).</summary>
    public IReadOnlyList<Document> Documents { get; }

    public SmallModels()
    {
        var small = new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small };
        SeededCheckpoint.Write(BiEncoderPath, TestPaths.SharedModel("all-MiniLM-L6-v2"), 1, small);
        SeededCheckpoint.Write(OtherBiEncoderPath, TestPaths.SharedModel("all-MiniLM-L6-v2"), 2, small);
        SeededCheckpoint.Write(CrossEncoderPath, TestPaths.SharedModel("ms-marco-MiniLM-L-6-v2"), 3, small with { CrossEncoder = true });
        BiEncoder = SentenceEncoder.Load(BiEncoderPath);
        OtherBiEncoder = SentenceEncoder.Load(OtherBiEncoderPath);
        CrossEncoder = CrossEncoder.Load(CrossEncoderPath);
        Documents = CorpusReader.ReadAsync(NfCorpusZip).Take(60).ToListAsync().AsTask().GetAwaiter().GetResult();
    }

    public static string NfCorpusZip => Path.Combine(TestPaths.SharedDataset("beir-nfcorpus"), "nfcorpus.zip");

    public void Dispose()
    {
        BiEncoder.Dispose();
        OtherBiEncoder.Dispose();
        CrossEncoder.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}
