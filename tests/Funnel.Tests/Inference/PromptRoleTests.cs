using Funnel.Inference;
using Funnel.Tests.Tokenization;

namespace Funnel.Tests.Inference;

/// <summary>SentenceEncoder's query and document roles against sentence-transformers v5's encode_query / encode_document rule.</summary>
public sealed class PromptRoleTests(PromptModels models) : IClassFixture<PromptModels>
{
    private static readonly string[] Texts = ["How many people live in Berlin?", "Berlin had 3,520,031 registered inhabitants.", ""];

    [Fact]
    public void Queries_and_documents_get_their_prompts_and_nothing_else()
    {
        float[][] queries = models.Prompted.EncodeQueries(Texts);
        float[][] documents = models.Prompted.EncodeDocuments(Texts);
        float[][] bare = models.Plain.Encode(Texts, promptName: null);

        for (int i = 0; i < Texts.Length; i++)
        {
            Similarity.AssertClose(models.ExpectedQuery(Texts[i]), queries[i], 1e-6f);
            Similarity.AssertClose(models.ExpectedDocument(Texts[i]), documents[i], 1e-6f);
            Assert.True(Similarity.MaxAbsDifference(bare[i], queries[i]) > 1e-3f, "the query prompt must change the vector");
        }
        Similarity.AssertClose(queries[0], models.Prompted.EncodeQuery(Texts[0]), 0f);
        // No prompts: both roles are plain encoding.
        Assert.Equal(bare, models.Plain.EncodeQueries(Texts));
        Assert.Equal(bare, models.Plain.EncodeDocuments(Texts));
    }

    /// <summary>
    /// encode_query: "query" if the model has it, else default_prompt_name. encode_document: the first of "document", "passage",
    /// "corpus" the model has, else default_prompt_name.
    /// </summary>
    [Theory]
    [InlineData("", null, null, null)]
    [InlineData("query,passage,corpus", null, "query", "passage")]
    [InlineData("corpus,passage,document", null, null, "document")]
    [InlineData("corpus,classification", "classification", "classification", "corpus")]
    [InlineData("query", "query", "query", "query")]
    [InlineData("search_query,search_document", null, null, null)]
    public void Prompt_names_follow_the_sentence_transformers_rule(string names, string? defaultName, string? query, string? document)
    {
        using var folder = new TempFolder();
        var prompts = names.Split(',', StringSplitOptions.RemoveEmptyEntries).ToDictionary(n => n, n => n + ": ");
        PromptModels.Write(folder.Path, prompts, defaultName);
        using SentenceEncoder encoder = SentenceEncoder.Load(folder.Path);

        Assert.Equal(query, encoder.QueryPromptName);
        Assert.Equal(document, encoder.DocumentPromptName);
        Assert.Equal(query is null ? null : query + ": ", encoder.Fingerprint.QueryPrompt);
        Assert.Equal(document is null ? null : document + ": ", encoder.Fingerprint.DocumentPrompt);
    }

    [Fact]
    public void A_document_prompt_takes_its_tokens_out_of_the_chunk_window()
    {
        // "passage: " is two wordpieces ("passage", ":"); [CLS] and [SEP] are two more.
        Assert.Equal(["passage", ":"], models.Prompted.Tokenizer.Encode(PromptModels.PassagePrompt).InputIds[1..^1].Select(models.Prompted.Tokenizer.IdToToken));
        Assert.Equal(models.Prompted.MaxSequenceLength - 4, models.Prompted.MaxDocumentTokens);
        Assert.Equal(models.Plain.MaxSequenceLength - 2, models.Plain.MaxDocumentTokens);
    }

    [Fact]
    public void An_unknown_prompt_is_refused_with_the_ones_there_are()
    {
        var error = Assert.Throws<ArgumentException>(() => models.Prompted.PromptText("document"));
        Assert.Contains("no prompt \"document\" (it has: query, passage)", error.Message);
        Assert.Equal("", models.Prompted.PromptText(null));
    }
}
