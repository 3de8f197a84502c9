// Embeds sentences with the default model, all-MiniLM-L6-v2 (loaded from its NuGet package: no download), through
// Microsoft.Extensions.AI's IEmbeddingGenerator, so any code written against that interface can use it.
//   dotnet run --project examples/Embed -- "This is an example sentence" "Each sentence is converted"
using Funnel.Inference;
using Microsoft.Extensions.AI;

string[] sentences = args.Length > 0 ? args : ["This is an example sentence", "Each sentence is converted"];

using SentenceEncoder encoder = await SentenceEncoder.FromPretrainedAsync("sentence-transformers/all-MiniLM-L6-v2");
IEmbeddingGenerator<string, Embedding<float>> generator = encoder;

GeneratedEmbeddings<Embedding<float>> embeddings = await generator.GenerateAsync(sentences);
for (int i = 0; i < sentences.Length; i++)
{
    ReadOnlySpan<float> vector = embeddings[i].Vector.Span;
    Console.WriteLine($"{sentences[i]}: {vector.Length} dims, [{string.Join(", ", vector[..6].ToArray().Select(x => x.ToString("F4")))}, ...]");
}

// The vectors are unit length, so their dot product is the cosine similarity.
if (sentences.Length > 1)
{
    float cosine = System.Numerics.Tensors.TensorPrimitives.Dot(embeddings[0].Vector.Span, embeddings[1].Vector.Span);
    Console.WriteLine($"cosine(first, second) = {cosine:F4}");
}
