using Funnel.Inference;
using Funnel.Retrieval;
using Funnel.Tests.Inference;

namespace Funnel.Tests.Retrieval;

/// <summary>Ingest tokenizes each document once and hands the chunks' token sequences to the encoder.</summary>
public sealed class ChunkTokenizationTests(SmallModels small, PromptModels prompted) : IClassFixture<SmallModels>, IClassFixture<PromptModels>
{
    private static readonly ChunkingOptions Chunking = new() { MaxTokens = 48, OverlapTokens = 8 };

    [Fact]
    public void EachDocumentIsTokenizedOnceAndTheVectorsAreThoseOfTheChunksTexts()
    {
        foreach (SentenceEncoder encoder in new[] { small.BiEncoder, prompted.Prompted })
        {
            var embedder = new DocumentEmbedder(encoder, Chunking);
            IReadOnlyList<Document> documents = small.Documents;
            long before = encoder.Tokenizer.EncodedCount;
            IReadOnlyList<EmbeddedDocument> embedded = embedder.Embed(documents);
            int chunks = embedded.Sum(e => e.Chunks.Count);
            Assert.True(chunks > 2 * documents.Count, $"only {chunks} chunks for {documents.Count} documents: they should need several each");
            // One tokenization per document, plus one for each rare chunk the chunker had to open inside a word (NFCorpus has
            // one such here): far fewer than one per chunk, where ingest used to tokenize every chunk again.
            long calls = encoder.Tokenizer.EncodedCount - before;
            int insideWord = embedded.Sum(e =>
            {
                var encoding = encoder.Tokenizer.Encode(e.Document.FullText, int.MaxValue);
                return e.Chunks.Count(c => Enumerable.Range(0, encoding.Length).Any(i =>
                    !encoding.SpecialTokensMask[i] && encoding.Offsets[i].Start == c.Start && encoder.Tokenizer.IdToToken(encoding.InputIds[i]).StartsWith("##")));
            });
            Assert.InRange(insideWord, 1, 5);
            Assert.Equal(documents.Count + insideWord, calls);

            // The same vectors as tokenizing every chunk's text again after the document prompt (the old way).
            string[] texts = [.. embedded.SelectMany(e => e.Chunks.Select(c => e.Document.FullText[c.Start..c.End]))];
            float[][] again = encoder.EncodeDocuments(texts);
            Assert.Equal(again, embedded.SelectMany(e => e.Vectors));
            Assert.Equal(embedded.Select(e => e.Chunks), documents.Select(d => embedder.Chunk(d.FullText)));
        }
    }
}
