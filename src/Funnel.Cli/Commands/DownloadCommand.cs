using System.CommandLine;
using Funnel.Inference.Hub;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel download MODEL_ID [--revision R]</c>: fetch a Hub model into the Hugging Face cache, print its folder.</summary>
internal static class DownloadCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model")
        {
            Description = "Hub model id, e.g. sentence-transformers/all-MiniLM-L6-v2 (optionally @revision).",
        };
        var revision = new Option<string?>("--revision")
        {
            Description = "Branch, tag or commit to fetch (default: main, or the @revision of the id).",
        };
        var command = new Command("download", "Download a model's config, tokenizer and weights (safetensors, else the ONNX export) from the Hugging Face Hub into its cache (HF_HOME), and print the local folder.")
        {
            model,
            revision,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async output =>
        {
            HubModelId id = ParseId(parse.GetValue(model)!, parse.GetValue(revision));
            output.WriteLine(await ModelFolders.DownloadAsync(id, ct));
            return 0;
        }));
        return command;
    }

    private static HubModelId ParseId(string modelId, string? revision)
    {
        if (!HubModelId.TryParse(modelId, out HubModelId? id))
            throw new UsageException($"'{modelId}' is not a Hub model id: expected org/name or org/name@revision");
        if (revision is null) return id;
        if (modelId.Contains('@', StringComparison.Ordinal))
            throw new UsageException($"give the revision once: either '{modelId}' or --revision {revision}");
        return new HubModelId(id.RepoId, revision);
    }
}
