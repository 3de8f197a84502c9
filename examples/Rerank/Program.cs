// Reranks candidate passages for a query with a cross-encoder through IReranker, and prints the top k.
//   dotnet run --project examples/Rerank -- <cross-encoder folder or Hub id> [k]
// A cross-encoder folder to try it with (no download): random weights, so the order is arbitrary but the code path real,
//   ./funnel model random --cross-encoder --like ../shared/models/ms-marco-MiniLM-L-6-v2 --out /tmp/cross
// or a trained one: ./funnel train cross-encoder --base sentence-transformers/all-MiniLM-L6-v2 --dataset ../shared/datasets/stsbenchmark --out /tmp/cross (docs/training.md).
using Funnel.Inference;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: Rerank <cross-encoder folder or Hub id> [k]");
    return 2;
}
int k = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;

const string query = "How many people live in Berlin?";
string[] passages =
[
    "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
    "Berlin is well known for its museums.",
    "New York City is famous for the Metropolitan Museum of Art.",
    "The capital of Germany is Berlin, its largest city by population.",
];

CrossEncoder crossEncoder;
try
{
    crossEncoder = await CrossEncoder.FromPretrainedAsync(args[0]);
}
catch (Funnel.FunnelException e) // not a model folder, a bi-encoder, no weights, an unknown id: the message says which
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
using var _ = crossEncoder;
IReranker reranker = crossEncoder;
RerankScores scores = await reranker.ScoreAsync(query, passages);

// ScoreOrder is the one order Funnel uses everywhere: best first, ties in input order.
foreach (int i in ScoreOrder.BestFirst(scores.Scores).Take(k))
    Console.WriteLine($"{scores.Scores[i],8:F4}  (logit {scores.Logits[i]:F4})  {passages[i]}");
return 0;
