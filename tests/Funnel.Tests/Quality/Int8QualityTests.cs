using Xunit.Abstractions;
using Funnel.Evaluation;
using Funnel.Inference;
using Funnel.Tests.Inference;
using Funnel.Tests.Packaged;

namespace Funnel.Tests.Quality;

/// <summary>
/// The quality gates of int8 inference against fp32, with the real packaged all-MiniLM-L6-v2 on the STS benchmark's test
/// split (Spearman drop ≤ 0.005, median vector cosine ≥ 0.99), and with a random-weight MiniLM cross-encoder (no trained
/// one is here) on TREC DL 2019's BM25 candidates (Kendall τ of the int8 scores against the fp32 ones). The NFCorpus
/// nDCG@10 gate needs the corpus embedded once more and is measured outside CI (docs/int8.md).
/// </summary>
public sealed class Int8QualityTests(MaterializedModels models, ITestOutputHelper output) : IClassFixture<MaterializedModels>
{
    private const double MaxSpearmanDrop = 0.005, MinMedianCosine = 0.99;

    [Fact]
    public void MiniLm_StsBenchmarkTest_Int8LosesAtMost0_005SpearmanAndKeepsCosine0_99()
    {
        IReadOnlyList<StsPair> pairs = StsBenchmark.ReadSplit(TestPaths.SharedDataset("stsbenchmark"), "test");
        string[] sentences = pairs.SelectMany(p => new[] { p.Sentence1, p.Sentence2 }).ToArray();
        Assert.Equal(2758, sentences.Length);
        float[][] fp32 = Embed(sentences, InferencePrecision.Fp32), int8 = Embed(sentences, InferencePrecision.Int8);

        double[] gold = pairs.Select(p => p.Score).ToArray();
        double Spearman(float[][] v) => Correlation.Spearman(pairs.Select((_, i) => Similarity.Cosine(v[2 * i], v[2 * i + 1])).ToArray(), gold);
        double reference = Spearman(fp32), quantized = Spearman(int8);
        // fp32 is the published 82.03 (PublishedQualityTests); int8 may lose at most the issue's 0.005 of it.
        Assert.InRange(reference, 0.8203 - 0.001, 0.8203 + 0.001);
        Assert.True(quantized >= reference - MaxSpearmanDrop, $"int8 Spearman {quantized:F4} vs fp32 {reference:F4}");

        double[] cosines = fp32.Select((v, i) => Similarity.Cosine(v, int8[i])).Order().ToArray();
        double median = cosines[cosines.Length / 2];
        output.WriteLine($"STS-B test Spearman fp32 {reference:F4}, int8 {quantized:F4}; cosine int8 to fp32: median {median:F5}, least {cosines[0]:F5}");
        Assert.True(median >= MinMedianCosine, $"median cosine int8 to fp32 {median:F5}");
        // Quantized for real: not fp32's vectors bit for bit.
        Assert.True(cosines[0] < 0.99999, $"least cosine {cosines[0]:F6}: int8 changed nothing");
    }

    private float[][] Embed(string[] texts, InferencePrecision precision)
    {
        using SentenceEncoder encoder = SentenceEncoder.Load(models.MiniLm, new EncoderOptions { Precision = precision });
        Assert.Equal(precision, encoder.Fingerprint.Precision);
        return encoder.Encode(texts);
    }

    [Fact]
    public void RandomMiniLmCrossEncoder_TrecDl2019Candidates_Int8KeepsTheFp32Order()
    {
        // A MiniLM-L6 cross-encoder of random weights (the real architecture and vocabulary): 10 queries × their 20 best
        // BM25 candidates at up to 128 tokens, so it stays quick; τ per query, then the mean and the worst.
        string dir = Directory.CreateTempSubdirectory("funnel-int8-ce-").FullName;
        try
        {
            SeededCheckpoint.Write(dir, TestPaths.SharedModel("ms-marco-MiniLM-L-6-v2"), seed: 13,
                new SeededCheckpointOptions { Architecture = CheckpointArchitecture.MiniLmL6, CrossEncoder = true });
            var set = TrecDlRerankSet.Load(TestPaths.SharedDataset("trec-dl-2019-passage"));
            var queries = set.Queries.Take(10).ToArray();
            float[][] Score(InferencePrecision precision)
            {
                using var encoder = CrossEncoder.Load(dir, new EncoderOptions { Precision = precision, MaxSequenceLength = 128 });
                return queries.Select(q => encoder.Score(q.Text, q.Candidates.Take(20).Select(c => c.Text).ToArray())).ToArray();
            }
            float[][] fp32 = Score(InferencePrecision.Fp32), int8 = Score(InferencePrecision.Int8);
            double[] taus = fp32.Select((s, i) => KendallTau(s, int8[i])).ToArray();
            output.WriteLine($"Kendall τ int8 vs fp32: mean {taus.Average():F3}, least {taus.Min():F3}");
            Assert.True(taus.Average() >= 0.9 && taus.Min() >= 0.75,
                $"Kendall τ int8 vs fp32 per query: {string.Join(", ", taus.Select(t => t.ToString("F3")))}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Kendall's τ-b: concordant minus discordant pairs over the pairs not tied in each ranking.</summary>
    internal static double KendallTau(IReadOnlyList<float> x, IReadOnlyList<float> y)
    {
        long concordant = 0, discordant = 0, tiedX = 0, tiedY = 0;
        for (int i = 0; i < x.Count; i++)
            for (int j = i + 1; j < x.Count; j++)
            {
                int a = Math.Sign(x[i] - x[j]), b = Math.Sign(y[i] - y[j]);
                if (a == 0 && b == 0) continue;
                if (a == 0) tiedX++;
                else if (b == 0) tiedY++;
                else if (a == b) concordant++;
                else discordant++;
            }
        double n = Math.Sqrt((double)(concordant + discordant + tiedX) * (concordant + discordant + tiedY));
        return n == 0 ? 1 : (concordant - discordant) / n;
    }

    [Fact]
    public void KendallTauByHand()
    {
        Assert.Equal(1, KendallTau([1, 2, 3], [10, 20, 30]), 12);
        Assert.Equal(-1, KendallTau([1, 2, 3], [3, 2, 1]), 12);
        // [1,2,3,4] vs [1,3,2,4]: 5 concordant, 1 discordant of 6 → 4/6.
        Assert.Equal(4.0 / 6, KendallTau([1, 2, 3, 4], [1, 3, 2, 4]), 12);
    }
}
