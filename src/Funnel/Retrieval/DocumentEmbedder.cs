using Funnel.Inference;

namespace Funnel.Retrieval;

/// <summary>Chunks documents at wordpiece boundaries of the bi-encoder's own tokenizer and embeds every chunk as a document
/// (after the model's document prompt, if it has one).</summary>
public sealed class DocumentEmbedder
{
    private readonly SentenceEncoder _encoder;
    private readonly ChunkingOptions _chunking;
    private readonly string _prompt;
    private readonly int[] _promptIds;

    public DocumentEmbedder(SentenceEncoder encoder, ChunkingOptions chunking)
    {
        chunking.Validate();
        CheckFits(chunking, encoder, nameof(chunking));
        _encoder = encoder;
        _chunking = chunking;
        _prompt = encoder.PromptText(encoder.DocumentPromptName);
        var prompt = encoder.Tokenizer.Encode(_prompt, int.MaxValue);
        _promptIds = [.. prompt.InputIds.Where((_, i) => !prompt.SpecialTokensMask[i])];
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
    public IReadOnlyList<ChunkSpan> Chunk(string text) => [.. Tokenized(text).Chunks.Select(c => c.Span)];

    /// <summary>
    /// The text's wordpieces (ids and offsets, without the template's [CLS] and [SEP]) and its chunks as token ranges of them:
    /// one tokenization serves both the cutting and the encoder.
    /// </summary>
    private (int[] Ids, IReadOnlyList<(ChunkSpan Span, int FirstToken, int EndToken)> Chunks) Tokenized(string text)
    {
        var encoding = _encoder.Tokenizer.Encode(text, int.MaxValue);
        var ids = new List<int>(encoding.Length);
        var offsets = new List<(int Start, int End)>(encoding.Length);
        for (int i = 0; i < encoding.Length; i++)
            if (!encoding.SpecialTokensMask[i])
            {
                ids.Add(encoding.InputIds[i]);
                offsets.Add(encoding.Offsets[i]);
            }
        return ([.. ids], TextChunker.SplitTokens(text, offsets, _chunking));
    }

    /// <summary>
    /// Chunks and embeds a batch. Each document is tokenized once; each chunk's input is [CLS], the document prompt's wordpieces,
    /// the chunk's own wordpieces and [SEP] (what tokenizing the prompt and the chunk's text gives, since prompts end where
    /// WordPiece splits anyway), so a chunk is not tokenized again unless it opens inside a word. All chunks of the batch go through the encoder together (it
    /// batches by length).
    /// </summary>
    public IReadOnlyList<EmbeddedDocument> Embed(IReadOnlyList<Document> documents, CancellationToken ct = default)
    {
        var chunks = new IReadOnlyList<ChunkSpan>[documents.Count];
        var inputs = new List<TokenSequence>();
        for (int d = 0; d < documents.Count; d++)
        {
            ct.ThrowIfCancellationRequested();
            string full = documents[d].FullText;
            var (ids, cuts) = Tokenized(full);
            chunks[d] = [.. cuts.Select(c => c.Span)];
            foreach (var (span, first, end) in cuts)
                inputs.Add(first < end && IsContinuation(ids[first])
                    // A chunk the chunker had to open inside a word: its text alone tokenizes the fragment as a word of its own,
                    // and that (what collections have always stored) is kept, at one more tokenization.
                    ? _encoder.Tokenize([full[span.Start..span.End]], _prompt, truncate: true, ct)[0]
                    : Input(ids.AsSpan(first, end - first)));
        }
        float[][] vectors = _encoder.EncodeTokens(inputs, ct: ct);
        var embedded = new EmbeddedDocument[documents.Count];
        for (int d = 0, next = 0; d < documents.Count; d++)
        {
            embedded[d] = new EmbeddedDocument(documents[d], chunks[d], vectors[next..(next + chunks[d].Count)]);
            next += chunks[d].Count;
        }
        return embedded;
    }

    private bool IsContinuation(int id) =>
        _encoder.Tokenizer.IdToToken(id).StartsWith(_encoder.Tokenizer.WordPieceSettings.ContinuationPrefix, StringComparison.Ordinal);

    private TokenSequence Input(ReadOnlySpan<int> chunk)
    {
        var ids = new int[_promptIds.Length + chunk.Length + 2];
        ids[0] = _encoder.Tokenizer.ClsId;
        _promptIds.CopyTo(ids, 1);
        chunk.CopyTo(ids.AsSpan(1 + _promptIds.Length));
        ids[^1] = _encoder.Tokenizer.SepId;
        return new TokenSequence(ids, new int[ids.Length]);
    }
}
