namespace Funnel.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Funnel.Bench -- SUITE [options]</c>. Each suite prints
/// throughput, latency percentiles and peak memory beside a reference measured in the same run.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, (string Help, Func<string[], int> Run)> Suites = new()
    {
        ["encoders"] = (Encoders.EncoderSuite.Help, Encoders.EncoderSuite.Run),
        ["peer"] = (Encoders.PeerSuite.Help, Encoders.PeerSuite.Run),
        ["server"] = (Server.ServerLoadSuite.Help, Server.ServerLoadSuite.Run),
        ["tokenizer"] = (Tokenizer.TokenizerSuite.Help, Tokenizer.TokenizerSuite.Run),
        ["hub"] = (Hub.HubSuite.Help, Hub.HubSuite.Run),
        ["ann"] = (Ann.AnnSuite.Help, Ann.AnnSuite.Run),
        ["bm25"] = (Bm25.Bm25Suite.Help, Bm25.Bm25Suite.Run),
        ["pipeline"] = (Pipeline.PipelineSuite.Help, Pipeline.PipelineSuite.Run),
        ["ingest-search"] = (Collections.IngestSearchSuite.Help, Collections.IngestSearchSuite.Run),
        ["training"] = (Training.TrainingSuite.Help, Training.TrainingSuite.Run),
        ["cluster"] = (Cluster.ClusterSuite.Help, Cluster.ClusterSuite.Run),
    };

    public static int Main(string[] args)
    {
        if (args.Length == 0 || !Suites.TryGetValue(args[0], out var suite))
        {
            Console.Error.WriteLine("usage: Funnel.Bench SUITE [options]");
            foreach (var (name, (help, _)) in Suites) Console.Error.WriteLine($"  {name,-10} {help}");
            return 2;
        }
        return suite.Run(args[1..]);
    }
}
