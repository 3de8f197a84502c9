using System.CommandLine;
using Funnel.Cli.Commands;

namespace Funnel.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        ParseResult parse = BuildRoot().Parse(args);
        // Training stops at a step boundary and writes a checkpoint on Ctrl-C, which takes longer than the default 2 s.
        bool training = parse.CommandResult.Command.Name == "train";
        return parse.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = training ? TrainCommand.TerminationTimeout : TimeSpan.FromSeconds(2) });
    }

    /// <summary>Every command of <c>funnel</c>; each lives in its own file under Commands/.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Funnel: retrieve-and-rerank semantic search.");
        foreach (Command command in Commands())
            root.Subcommands.Add(command);
        return root;
    }

    private static IEnumerable<Command> Commands()
    {
        yield return VersionCommand.Create();
        yield return EmbedCommand.Create();
        yield return RerankCommand.Create();
        yield return ModelCommand.Create();
        yield return DownloadCommand.Create();
        yield return ServeCommand.Create();
        yield return TokenizeCommand.Create();
        yield return EvalCommand.Create();
        yield return IndexCommand.Create();
        yield return SearchCommand.Create();
        yield return ReindexCommand.Create();
        yield return DeleteCommand.Create();
        yield return CollectionCommand.Create();
        yield return TrainCommand.Create();
    }
}
