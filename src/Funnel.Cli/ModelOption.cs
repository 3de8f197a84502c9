using System.CommandLine;

namespace Funnel.Cli;

/// <summary>The <c>--model</c> option every model command takes: a local folder or a Hugging Face Hub id.</summary>
internal static class ModelOption
{
    public static Option<string> Create(string description = "Model folder, or Hugging Face Hub id (org/name[@revision]).") =>
        new("--model", "-m") { Description = description, Required = true };

    /// <summary>The local folder for the option's value, downloading a Hub model the cache lacks.</summary>
    public static Task<string> ResolveAsync(ParseResult parse, Option<string> option, CancellationToken ct) =>
        ModelFolders.ResolveAsync(parse.GetRequiredValue(option), ct);
}
