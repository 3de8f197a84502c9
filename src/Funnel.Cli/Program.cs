using System.CommandLine;
using System.CommandLine.Help;
using Funnel.Cli.Commands;

namespace Funnel.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args);

    /// <summary>
    /// Parses and runs a command line. One that does not parse (an unknown option, a value of the wrong kind) prints one
    /// <c>error:</c> line per problem and exits with <see cref="CliAction.UsageError"/>, running nothing.
    /// </summary>
    public static int Run(string[] args, InvocationConfiguration? configuration = null)
    {
        ParseResult parse = BuildRoot().Parse(args);
        // Training stops at a step boundary and writes a checkpoint on Ctrl-C, which takes longer than the default 2 s.
        bool training = parse.CommandResult.Command.Name == "train";
        configuration ??= new InvocationConfiguration { ProcessTerminationTimeout = training ? TrainCommand.TerminationTimeout : TimeSpan.FromSeconds(2) };
        IReadOnlyList<string> errors = args.Length == 0 ? [] : CommandLineErrors.Of(parse); // no arguments: the default shows help
        if (errors.Count == 0) return parse.Invoke(configuration);
        foreach (string error in errors) configuration.Error.WriteLine($"error: {error}");
        configuration.Error.WriteLine($"see `{CommandLineErrors.CommandPath(parse)} --help`");
        return CliAction.UsageError;
    }

    /// <summary>Every command of <c>funnel</c>; each lives in its own file under Commands/.</summary>
    public static Command BuildRoot()
    {
        // A plain command rather than RootCommand, whose name is the executable's ("Funnel.Cli" in usage lines).
        var root = new Command("funnel", "Funnel: retrieve-and-rerank semantic search.") { new HelpOption(), new VersionOption() };
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
