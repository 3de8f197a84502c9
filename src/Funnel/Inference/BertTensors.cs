namespace Funnel.Inference;

/// <summary>The tensors of a Hugging Face BERT checkpoint.</summary>
internal static class BertTensors
{
    public const string Prefix = "bert.";

    /// <summary>The tensors of a checkpoint in file order, as Hugging Face names and shapes them: the encoder
    /// and pooler, plus the classifier for BertForSequenceClassification (whose encoder is named <c>bert.</c>*).</summary>
    public static List<(string Name, int[] Shape)> Specs(BertConfig c, bool crossEncoder)
    {
        int h = c.HiddenSize, i = c.IntermediateSize;
        string p = crossEncoder ? "bert." : "";
        var specs = new List<(string, int[])>
        {
            (p + "embeddings.word_embeddings.weight", [c.VocabSize, h]),
            (p + "embeddings.position_embeddings.weight", [c.MaxPositionEmbeddings, h]),
            (p + "embeddings.token_type_embeddings.weight", [c.TypeVocabSize, h]),
            (p + "embeddings.LayerNorm.weight", [h]),
            (p + "embeddings.LayerNorm.bias", [h]),
        };
        for (int l = 0; l < c.Layers; l++)
        {
            string q = $"{p}encoder.layer.{l}.";
            foreach (string part in new[] { "query", "key", "value" })
            {
                specs.Add((q + $"attention.self.{part}.weight", [h, h]));
                specs.Add((q + $"attention.self.{part}.bias", [h]));
            }
            specs.AddRange([
                (q + "attention.output.dense.weight", [h, h]), (q + "attention.output.dense.bias", [h]),
                (q + "attention.output.LayerNorm.weight", [h]), (q + "attention.output.LayerNorm.bias", [h]),
                (q + "intermediate.dense.weight", [i, h]), (q + "intermediate.dense.bias", [i]),
                (q + "output.dense.weight", [h, i]), (q + "output.dense.bias", [h]),
                (q + "output.LayerNorm.weight", [h]), (q + "output.LayerNorm.bias", [h]),
            ]);
        }
        specs.Add((p + "pooler.dense.weight", [h, h]));
        specs.Add((p + "pooler.dense.bias", [h]));
        if (crossEncoder)
        {
            specs.Add(("classifier.weight", [c.NumLabels, h]));
            specs.Add(("classifier.bias", [c.NumLabels]));
        }
        return specs;
    }

    /// <summary>A tensor's name without the <c>bert.</c> prefix that task heads add.</summary>
    public static string Unprefixed(string name) => name.StartsWith(Prefix, StringComparison.Ordinal) ? name[Prefix.Length..] : name;

    /// <summary>Whether the encoder needs the tensor for every use (the pooler and classifier only serve the classification head).</summary>
    public static bool IsEncoder(string unprefixedName) => unprefixedName.StartsWith("embeddings.", StringComparison.Ordinal)
        || unprefixedName.StartsWith("encoder.", StringComparison.Ordinal);
}
