namespace Funnel.Tokenization;

/// <summary>
/// A BERT WordPiece tokenizer that reproduces Hugging Face's fast (Rust) tokenizer: added-token
/// matching, <see cref="BertNormalizer"/>, BERT pre-tokenization, WordPiece, truncation and the
/// <c>[CLS] A [SEP] B [SEP]</c> template. Immutable and safe to share between threads.
/// </summary>
public sealed class BertTokenizer
{
    private const int SliceLength = 2048;

    private readonly WordPiece _model;
    private readonly AddedTokens? _rawAddedTokens;        // matched in the raw text
    private readonly AddedTokens? _normalizedAddedTokens; // matched, by their normalized content, in the normalized text
    private readonly string[] _idToToken;
    private readonly Dictionary<string, int> _tokenToId;

    internal BertTokenizer(
        IReadOnlyDictionary<string, int> vocab,
        WordPiece model,
        BertNormalizer normalizer,
        PostProcessor postProcessor,
        IReadOnlyList<AddedToken> addedTokens,
        SpecialTokens specialTokens,
        TruncationOptions? truncation,
        PaddingOptions? padding,
        int? modelMaxLength)
    {
        _model = model;
        Normalizer = normalizer;
        PostProcessor = postProcessor;
        _rawAddedTokens = addedTokens.Any(t => !t.Normalized) ? new AddedTokens(addedTokens.Where(t => !t.Normalized)) : null;
        _normalizedAddedTokens = addedTokens.Any(t => t.Normalized)
            ? new AddedTokens(addedTokens.Where(t => t.Normalized).Select(t => t with { Content = normalizer.Normalize(t.Content) }))
            : null;
        _tokenToId = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        foreach (AddedToken token in addedTokens) _tokenToId.TryAdd(token.Content, token.Id);
        _idToToken = new string[_tokenToId.Values.Max() + 1];
        Array.Fill(_idToToken, "");
        foreach (var (token, id) in _tokenToId) _idToToken[id] = token;
        VocabSize = _idToToken.Length;
        UnkId = model.UnkId;
        ClsId = RequireId(specialTokens.Cls, "cls");
        SepId = RequireId(specialTokens.Sep, "sep");
        PadId = padding?.PadId ?? RequireId(specialTokens.Pad, "pad");
        ConfiguredTruncation = truncation;
        ConfiguredPadding = padding;
        ModelMaxLength = modelMaxLength;

        int RequireId(string token, string role) => _tokenToId.TryGetValue(token, out int id)
            ? id
            : throw new InvalidDataException($"the {role} token '{token}' is not in the vocabulary");
    }

    /// <summary>
    /// Loads a model folder: <c>tokenizer.json</c> when present, else <c>vocab.txt</c> with
    /// <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c> (both optional).
    /// </summary>
    public static BertTokenizer FromFolder(string modelDir) => TokenizerFiles.ReadFolder(modelDir);

    /// <summary>Loads a Hugging Face <c>tokenizer.json</c>.</summary>
    public static BertTokenizer FromTokenizerJson(string path) => TokenizerFiles.ReadTokenizerJson(path, modelMaxLength: null);

    public int PadId { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int UnkId { get; }
    public int VocabSize { get; }
    internal BertNormalizer Normalizer { get; }
    internal PostProcessor PostProcessor { get; }

    /// <summary>The special tokens ([CLS], [SEP]) the template adds to one text or to a pair (Hugging Face's <c>num_special_tokens_to_add</c>).</summary>
    public int SpecialTokenCount(bool pair) => pair ? PostProcessor.PairSpecialCount : PostProcessor.SingleSpecialCount;

    /// <summary>The truncation section of tokenizer.json, if any (Encode's maxLength always applies; this sets strategy and side).</summary>
    public TruncationOptions? ConfiguredTruncation { get; }

    /// <summary>The padding section of tokenizer.json, if any.</summary>
    public PaddingOptions? ConfiguredPadding { get; }

    /// <summary><c>model_max_length</c> from tokenizer_config.json, if given and sensible.</summary>
    public int? ModelMaxLength { get; }

    /// <summary>The WordPiece settings: unknown token, continuation prefix, longest word in code points.</summary>
    public (string UnkToken, string ContinuationPrefix, int MaxInputCharsPerWord) WordPieceSettings =>
        (_model.UnkToken, _model.ContinuationPrefix, _model.MaxInputCharsPerWord);

    /// <summary><c>[CLS] A [SEP]</c>, truncated to <paramref name="maxLength"/> tokens (specials included), unpadded.</summary>
    public Encoding Encode(string text, int maxLength = 512)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeCore(text, null, maxLength);
    }

    /// <summary>
    /// <c>[CLS] A [SEP] B [SEP]</c> with token types 0 / 1, truncated to <paramref name="maxLength"/>
    /// tokens by the configured strategy (HF's <c>longest_first</c> by default), unpadded.
    /// </summary>
    public Encoding EncodePair(string first, string second, int maxLength = 512)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        return EncodeCore(first, second, maxLength);
    }

    /// <summary>Encodes each text with <see cref="Encode"/>.</summary>
    public Encoding[] EncodeBatch(IReadOnlyList<string> texts, int maxLength = 512, CancellationToken ct = default)
    {
        var result = new Encoding[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            result[i] = Encode(texts[i], maxLength);
        }
        return result;
    }

    /// <summary>
    /// Pads a batch into row-major arrays with this tokenizer's pad id and configured padding side and
    /// multiple, to <paramref name="length"/> if given, else to the longest encoding.
    /// </summary>
    public PaddedBatch Pad(IReadOnlyList<Encoding> batch, int? length = null)
    {
        PaddingOptions options = (ConfiguredPadding ?? new PaddingOptions(PadId)) with { FixedLength = length };
        return Padding.ToBatch(batch, options);
    }

    /// <summary>The vocabulary entry for <paramref name="id"/> (e.g. "##ing", "[CLS]").</summary>
    public string IdToToken(int id) => (uint)id < (uint)_idToToken.Length
        ? _idToToken[id]
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"not a token id (vocabulary size {VocabSize})");

    /// <summary>The id of a vocabulary entry, or null.</summary>
    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out int id) ? id : null;

    private long _encoded;

    /// <summary>Texts (single or pair) encoded so far: lets tests check that a path tokenizes each input once.</summary>
    internal long EncodedCount => Interlocked.Read(ref _encoded);

    private Encoding EncodeCore(string first, string? second, int maxLength)
    {
        Interlocked.Increment(ref _encoded);
        bool isPair = second is not null;
        int specials = isPair ? PostProcessor.PairSpecialCount : PostProcessor.SingleSpecialCount;
        if (maxLength < specials)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength,
                $"must be at least {specials}, the number of special tokens the {(isPair ? "pair" : "single")} template adds");

        var a = new TokenBuffer(Math.Min(first.Length / 4 + 8, 1024));
        var b = new TokenBuffer(isPair ? Math.Min(second!.Length / 4 + 8, 1024) : 0);
        try
        {
            TruncationStrategy strategy = ConfiguredTruncation?.Strategy ?? TruncationStrategy.LongestFirst;
            TruncationSide side = ConfiguredTruncation?.Side ?? TruncationSide.Right;
            // Cutting from the right, tokenization can stop early: nothing past the cap can survive.
            int wordCap = side == TruncationSide.Right ? maxLength : int.MaxValue;
            Tokenize(first, ref a, wordCap);
            if (isPair) Tokenize(second!, ref b, wordCap);
            ReadOnlySpan<Token> tokensA = Truncation.CapWholeWords(a.Items, maxLength, side);
            ReadOnlySpan<Token> tokensB = Truncation.CapWholeWords(b.Items, maxLength, side);
            var (n1, n2) = Truncation.KeptLengths(tokensA.Length, isPair ? tokensB.Length : -1, maxLength - specials, strategy);
            return PostProcessor.Apply(Truncation.Keep(tokensA, n1, side), Truncation.Keep(tokensB, n2, side), isPair);
        }
        finally
        {
            a.Dispose();
            b.Dispose();
        }
    }

    /// <summary>
    /// As HF's added vocabulary: non-normalized added tokens are matched on the raw text; the text
    /// between them is normalized, normalized added tokens are matched in that, and the rest is split
    /// into words and WordPiece'd.
    /// </summary>
    private void Tokenize(string text, ref TokenBuffer tokens, int wordCap)
    {
        var normalized = new NormalizedText(Math.Min(text.Length, SliceLength) + 64);
        try
        {
            int position = 0;
            while (tokens.Count < wordCap)
            {
                AddedToken? added = null;
                int start = text.Length, end = text.Length;
                if (_rawAddedTokens is not null && _rawAddedTokens.TryFindNext(text, position, out AddedToken found, out start, out end))
                    added = found;
                for (int slice = position; slice < start && tokens.Count < wordCap;)
                {
                    int sliceEnd = SliceEnd(text, slice, start);
                    normalized.Clear();
                    Normalizer.Normalize(text.AsSpan(slice, sliceEnd - slice), slice, ref normalized);
                    TokenizeNormalized(normalized, ref tokens, wordCap);
                    slice = sliceEnd;
                }
                if (added is null || tokens.Count >= wordCap) break;
                tokens.Add(added.Id, start, end);
                position = end;
            }
        }
        finally
        {
            normalized.Dispose();
        }
    }

    /// <summary>
    /// Long text is normalized a slice at a time, each cut just before whitespace that stays a word
    /// separator after normalization, so no word spans two slices; with a word cap, tokenization
    /// then stops after the first slices instead of normalizing the whole text. (Not with normalized
    /// added tokens: one of those could contain the whitespace.)
    /// </summary>
    private int SliceEnd(string text, int start, int end)
    {
        if (end - start <= SliceLength || _normalizedAddedTokens is not null) return end;
        BertUnicode unicode = BertUnicode.Instance;
        for (int i = start + SliceLength; i < end; i++)
        {
            char c = text[i];
            if (Normalizer.CleanText ? unicode.IsCleanWhitespace(c) : unicode.IsSplitWhitespace(c)) return i;
        }
        return end;
    }

    private void TokenizeNormalized(in NormalizedText normalized, ref TokenBuffer tokens, int wordCap)
    {
        int position = 0;
        while (tokens.Count < wordCap)
        {
            AddedToken? added = null;
            int start = normalized.Length, end = normalized.Length;
            if (_normalizedAddedTokens is not null && _normalizedAddedTokens.TryFindNext(normalized.Chars, position, out AddedToken found, out start, out end))
                added = found;
            if (start > position) BertPreTokenizer.Split(normalized, position, start, _model, ref tokens, wordCap);
            if (added is null || tokens.Count >= wordCap) break;
            var (originalStart, originalEnd) = normalized.OriginalSpan(start, end);
            tokens.Add(added.Id, originalStart, originalEnd);
            position = end;
        }
    }
}

/// <summary>The special tokens a BERT template and padding need, by their strings.</summary>
internal sealed record SpecialTokens(string Cls = "[CLS]", string Sep = "[SEP]", string Pad = "[PAD]", string Unk = "[UNK]", string Mask = "[MASK]");
