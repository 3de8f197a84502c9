namespace Funnel.Tests.Inference;

/// <summary>
/// The committed ONNX Runtime fixtures are what they claim before Funnel is compared with them: the real model
/// (published values), read with the documented layout (the stored states pool to the stored vectors under each
/// model's contract), and covering what the parity tests rely on.
/// </summary>
public sealed class OnnxParityFixtureTests
{
    public static TheoryData<string> Models => new("all-MiniLM-L6-v2", "snowflake-arctic-embed-xs");

    [Fact]
    public void MiniLmFixtureReproducesThePublishedValues()
    {
        OnnxParityFixture f = OnnxParityFixture.Load("all-MiniLM-L6-v2");
        for (int i = 0; i < ModelCard.MiniLmL6V2.Length; i++)
        {
            Assert.Equal(ModelCard.MiniLmL6V2[i].Text, f.Texts[i].Value);
            ModelCard.AssertStartsLikeMiniLm(i, f.Pooled(i), "ONNX Runtime fixture");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void StoredStatesPoolToTheStoredVectors(string model)
    {
        OnnxParityFixture f = OnnxParityFixture.Load(model);
        int complete = 0;
        for (int i = 0; i < f.Texts.Count; i++)
        {
            OnnxParityFixture.Text t = f.Texts[i];
            if (t.Positions.Length != t.Ids.Length) continue;
            complete++;
            var sum = new float[f.HiddenSize];
            int rows = f.Pooling == "cls" ? 1 : t.Ids.Length;
            for (int k = 0; k < rows; k++)
            {
                float[] state = f.State(i, k);
                for (int d = 0; d < sum.Length; d++) sum[d] += state[d];
            }
            double cos = Similarity.Cosine(sum, f.Pooled(i));
            Assert.True(cos >= 0.99999, $"{model} text {i} ({t.Source}): {f.Pooling} pooling of the stored states has cosine {cos:R} with the stored vector");
        }
        Assert.True(complete > 150, $"{model}: only {complete} texts store every token");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void CoversRealTextsEdgeCasesAndTruncation(string model)
    {
        OnnxParityFixture f = OnnxParityFixture.Load(model);
        Assert.True(f.Texts.Count >= 200);
        foreach (string source in new[] { "model-card", "edge-case", "length", "stsb-test", "nfcorpus-query", "nfcorpus-doc" })
            Assert.Contains(f.Texts, t => t.Source == source);
        Assert.All(f.Texts, t => Assert.Equal(Math.Min(t.UntruncatedLength, f.MaxLength), t.Ids.Length));
        Assert.Contains(f.Texts, t => t.UntruncatedLength > f.MaxLength && t.Source == "nfcorpus-doc");
        Assert.Contains(f.Texts, t => t.Ids.Length == f.MaxLength && t.UntruncatedLength == f.MaxLength); // fills the model exactly
        Assert.All(f.Texts, t => Assert.Equal([101, .. t.Ids[1..^1], 102], t.Ids));
        Assert.All(f.Texts, t => Assert.Equal(t.Source == "nfcorpus-query" ? f.QueryPrompt ?? "" : "", t.Prompt));
    }
}
