using Funnel.Inference;

namespace Funnel.Retrieval;

/// <summary>Chunks documents at wordpiece boundaries of the bi-encoder's own tokenizer and embeds every chunk as a document
/// (after the model's document prompt, if it has one).</summary>
public sealed class DocumentEmbedder
{
    private readonly SentenceEncoder _encoder;
    private readonly ChunkingOptions _chunking;

    public DocumentEmbedder(SentenceEncoder encoder, ChunkingOptions chunking)
    {
        chunking.Validate();
        CheckFits(chunking, encoder, nameof(chunking));
        _encoder = encoder;
        _chunking = chunking;
    }

    /// <summary>Chunks must fit the encoder's window beside [CLS], [SEP] and the document prompt, or their ends would be cut off.</summary>
    internal static void CheckFits(ChunkingOptions chunking, SentenceEncoder encoder, string parameter)
    {
        if (chunking.MaxTokens > encoder.MaxDocumentTokens)
            throw new ArgumentOutOfRangeException(parameter, chunking.MaxTokens,
                $"chunks of {chunking.MaxTokens} wordpieces do not fit the bi-encoder's window of {encoder.MaxSequenceLength} tokens " +
                $"(at most {encoder.MaxDocumentTokens} beside [CLS], [SEP]{(encoder.DocumentPromptName is { } name ? $" and the \"{name}\" prompt" : "")})");
    }

    /// <summary>The chunks of <paramref name="text"/>: spans of at most <see cref="ChunkingOptions.MaxTokens"/> wordpieces.</summary>
    public IReadOnlyList<ChunkSpan> Chunk(string text)
    {
        var encoding = _encoder.Tokenizer.Encode(text, int.MaxValue);
        var offsets = new List<(int Start, int End)>(encoding.Length);
        for (int i = 0; i < encoding.Length; i++)
            if (!encoding.SpecialTokensMask[i]) offsets.Add(encoding.Offsets[i]);
        return TextChunker.Split(text, offsets, _chunking);
    }

    /// <summary>Chunks and embeds a batch; all chunks of the batch go through the encoder together (it batches by length).</summary>
    public IReadOnlyList<EmbeddedDocument> Embed(IReadOnlyList<Document> documents, CancellationToken ct = default)
    {
        var chunks = new IReadOnlyList<ChunkSpan>[documents.Count];
        var texts = new List<string>();
        for (int d = 0; d < documents.Count; d++)
        {
            ct.ThrowIfCancellationRequested();
            string full = documents[d].FullText;
            chunks[d] = Chunk(full);
            foreach (ChunkSpan span in chunks[d]) texts.Add(full[span.Start..span.End]);
        }
        float[][] vectors = _encoder.EncodeDocuments(texts, ct);
        var embedded = new EmbeddedDocument[documents.Count];
        for (int d = 0, next = 0; d < documents.Count; d++)
        {
            embedded[d] = new EmbeddedDocument(documents[d], chunks[d], vectors[next..(next + chunks[d].Count)]);
            next += chunks[d].Count;
        }
        return embedded;
    }
}
