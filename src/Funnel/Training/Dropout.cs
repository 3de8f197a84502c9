using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Training;

/// <summary>Where in the model a dropout mask applies (Hugging Face BERT's dropout modules).</summary>
internal enum DropoutSite : ulong
{
    /// <summary>After the embeddings' LayerNorm (hidden_dropout_prob).</summary>
    Embeddings = 1,
    /// <summary>On the attention probabilities (attention_probs_dropout_prob).</summary>
    AttentionProbabilities = 2,
    /// <summary>After the attention output projection, before the residual (hidden_dropout_prob).</summary>
    AttentionOutput = 3,
    /// <summary>After the feed-forward output projection, before the residual (hidden_dropout_prob).</summary>
    FeedForwardOutput = 4,
    /// <summary>On the pooled output, before the classifier (classifier_dropout, else hidden_dropout_prob).</summary>
    Classifier = 5,
}

/// <summary>
/// Seeded dropout as torch applies it in training mode (keep with probability 1 − p, scale kept values by
/// 1/(1 − p)), from a counter-based generator instead of a stored mask: an element's fate is a function of
/// (the sequence's key, site, layer, row, column), so the backward pass, a resumed run and a GradCache
/// re-forward regenerate exactly the forward's masks, whatever the batch composition or thread count.
/// Not torch's random stream: the masks differ from PyTorch's, their distribution does not.
/// </summary>
internal readonly struct Dropout
{
    private const ulong Golden = 0x9E3779B97F4A7C15;

    private readonly uint _threshold;
    private readonly float _scale;

    /// <summary>A 16-bit draw below the threshold drops the element: p is applied to a resolution of 2⁻¹⁶.</summary>
    public Dropout(float probability)
    {
        if (!(probability is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(probability), probability, "dropout must be in [0, 1)");
        Probability = probability;
        _threshold = (uint)Math.Round(probability * 65536.0);
        _scale = 1f / (1f - probability);
    }

    public float Probability { get; }

    public bool IsActive => _threshold > 0;

    /// <summary>The stream of one row: a hash of the sequence key and the row's place in the model.</summary>
    public static ulong RowStream(ulong sequenceKey, DropoutSite site, int layer, long row) =>
        Mix64(sequenceKey ^ Mix64(((ulong)site << 56) ^ ((ulong)(uint)layer << 40) ^ (ulong)row));

    /// <summary>In place: drops and rescales <paramref name="values"/> with the row's mask. The same call on a
    /// gradient applies the mask's derivative.</summary>
    public void Apply(Span<float> values, ulong rowStream)
    {
        if (!IsActive) return;
        int i = 0;
        if (Avx512F.IsSupported)
        {
            // 8 draws of 64 bits give 32 elements their 16-bit draws.
            Vector512<ulong> counters = Vector512.Create(1UL, 2, 3, 4, 5, 6, 7, 8);
            Vector512<ulong> stream = Vector512.Create(rowStream), golden = Vector512.Create(Golden), step = Vector512.Create(8UL);
            Vector512<uint> threshold = Vector512.Create(_threshold), low = Vector512.Create(0xFFFFu);
            Vector512<float> scale = Vector512.Create(_scale);
            ref float v0 = ref values[0];
            for (; i <= values.Length - 32; i += 32, counters += step)
            {
                Vector512<uint> bits = Mix64(stream + counters * golden).AsUInt32();
                // Lanes 2k, 2k+1 hold one 64-bit draw: its four 16-bit parts decide elements 4k … 4k+3.
                Vector512<uint> a = bits & low, b = Vector512.ShiftRightLogical(bits, 16);
                Vector512<float> lo = Vector512.LoadUnsafe(ref v0, (nuint)i), hi = Vector512.LoadUnsafe(ref v0, (nuint)i + 16);
                (Vector512<uint> first, Vector512<uint> second) = Interleave(a, b);
                Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(first, threshold).AsSingle(), lo * scale, Vector512<float>.Zero)
                    .StoreUnsafe(ref v0, (nuint)i);
                Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(second, threshold).AsSingle(), hi * scale, Vector512<float>.Zero)
                    .StoreUnsafe(ref v0, (nuint)i + 16);
            }
        }
        for (; i < values.Length; i++) values[i] = Keep(rowStream, i) ? values[i] * _scale : 0f;
    }

    /// <summary>Element i's fate: 16-bit part (i mod 4) of draw ⌊i/4⌋ + 1 of the row's stream.</summary>
    public bool Keep(ulong rowStream, int i)
    {
        ulong draw = Mix64(rowStream + (ulong)(i / 4 + 1) * Golden);
        return ((draw >> (16 * (i % 4))) & 0xFFFF) >= _threshold;
    }

    /// <summary>From the 16 low and 16 high 16-bit parts of 16 32-bit lanes, the element order of
    /// <see cref="Keep"/>: element 4k+j takes part j of draw k (parts 0, 1 from lane 2k; 2, 3 from lane 2k+1).</summary>
    private static (Vector512<uint> First, Vector512<uint> Second) Interleave(Vector512<uint> low, Vector512<uint> high)
    {
        // Element e (0 … 31): lane L = e / 2, from `low` when e is even, `high` when odd.
        Vector512<uint> indices = Vector512.Create(0u, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        Vector512<uint> first = Avx512F.PermuteVar16x32x2(low, indices, high);
        Vector512<uint> second = Avx512F.PermuteVar16x32x2(low, indices + Vector512.Create(8u), high);
        return (first, second);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Mix64(Vector512<ulong> z)
    {
        z = (z ^ Vector512.ShiftRightLogical(z, 30)) * Vector512.Create(0xBF58476D1CE4E5B9UL);
        z = (z ^ Vector512.ShiftRightLogical(z, 27)) * Vector512.Create(0x94D049BB133111EBUL);
        return z ^ Vector512.ShiftRightLogical(z, 31);
    }

    internal static ulong Mix64(ulong z) => Inference.SeededCheckpoint.Mix64(z);
}
