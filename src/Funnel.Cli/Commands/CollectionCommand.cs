using System.CommandLine;
using Funnel.Retrieval;
using Funnel.Retrieval.Storage;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel collection recover</c>: repair a collection that opening refuses as corrupt, saying what was lost.</summary>
internal static class CollectionCommand
{
    public static Command Create()
    {
        Option<string> collection = CollectionCommandLine.CollectionOption();
        var recover = new Command("recover",
            "Repair a collection whose write-ahead log is damaged: keep every intact batch, copy the damaged log aside, commit the result as a new generation, and report what was lost.")
        {
            collection,
        };
        recover.SetAction(parse => CliAction.Run(parse, output =>
        {
            CollectionRecoveryReport report = Collection.Recover(parse.GetValue(collection)!);
            output.WriteLine($"kept {report.KeptBatches} logged batches; the collection holds {report.Documents:N0} documents");
            if (report.ManifestProblem is { } manifest) output.WriteLine($"manifest: {manifest}; replayed every intact batch of the log");
            foreach (WalDamage damage in report.DamagedRanges)
                output.WriteLine($"lost: {damage.Length:N0} damaged bytes at offset {damage.Offset:N0} of the log{(damage.AfterSequence is { } after ? $", after batch {after}" : "")}");
            if (report.LostBatches.Count > 0) output.WriteLine($"lost batches: {Ranges(report.LostBatches)}");
            if (report.DroppedBatches.Count > 0) output.WriteLine($"dropped batches that could not be applied: {Ranges(report.DroppedBatches)}");
            if (report.TornBytes > 0) output.WriteLine($"dropped {report.TornBytes:N0} bytes of an interrupted (never acknowledged) batch at the log's end");
            if (report.DamagedLogCopy is { } copy) output.WriteLine($"the damaged log was kept as {copy}");
            if (!report.LostAnything && report.ManifestProblem is null) output.WriteLine("nothing was damaged");
            return 0;
        }));
        return new Command("collection", "Maintain a collection folder.") { recover };
    }

    /// <summary>"3-5, 9" for 3, 4, 5, 9.</summary>
    private static string Ranges(IReadOnlyList<long> numbers)
    {
        var parts = new List<string>();
        for (int i = 0; i < numbers.Count;)
        {
            int j = i;
            while (j + 1 < numbers.Count && numbers[j + 1] == numbers[j] + 1) j++;
            parts.Add(i == j ? $"{numbers[i]}" : $"{numbers[i]}-{numbers[j]}");
            i = j + 1;
        }
        return string.Join(", ", parts);
    }
}
