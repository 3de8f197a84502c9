using System.CommandLine;
using Funnel.Retrieval;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel delete</c>: remove documents from a collection by id.</summary>
internal static class DeleteCommand
{
    public static Command Create()
    {
        Option<string> collection = CollectionCommandLine.CollectionOption();
        var ids = new Argument<string[]>("ids") { Description = "Ids of the documents to delete.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("delete", "Delete documents from a collection (one durable batch).") { collection, ids };
        command.SetAction(parse => CliAction.Run(parse, output =>
        {
            string[] requested = parse.GetValue(ids)!;
            using Collection target = Collection.Open(parse.GetValue(collection)!);
            int deleted = target.Delete(requested);
            target.Checkpoint();
            output.WriteLine($"deleted {deleted} of {requested.Length} documents; the collection holds {target.DocumentCount:N0}");
            return deleted == requested.Distinct().Count() ? 0 : 1;
        }));
        return command;
    }
}
