using System.CommandLine;
using Funnel.Inference.Packaged;

namespace Funnel.Cli;

/// <summary>The <c>--model</c> option of the model commands: a local folder, a packaged model's id, or a Hugging Face Hub id.</summary>
internal static class ModelOption
{
    /// <summary>What a rerank path says when no cross-encoder is named: Funnel has none to fall back on.</summary>
    public const string NoPackagedCrossEncoder =
        "no cross-encoder is packaged with Funnel; give one (a model folder or a Hub id such as cross-encoder/ms-marco-MiniLM-L6-v2)";

    public static Option<string> Create(string description = "Model folder, or Hugging Face Hub id (org/name[@revision]).") =>
        new("--model", "-m") { Description = description, Required = true };

    /// <summary>A bi-encoder <c>--model</c> that defaults to the packaged <see cref="PackagedModels.DefaultBiEncoder"/>.</summary>
    public static Option<string> BiEncoder(string description) => new("--model", "-m")
    {
        Description = $"{description} (default: {PackagedModels.DefaultBiEncoder.Id}, packaged)",
        DefaultValueFactory = _ => PackagedModels.DefaultBiEncoder.Id,
    };

    /// <summary>A cross-encoder <c>--model</c>: there is no default, and leaving it out is refused with <see cref="NoPackagedCrossEncoder"/>.</summary>
    public static Option<string?> CrossEncoder(string description) => new("--model", "-m") { Description = description };

    /// <summary>The local folder for a model argument, writing a packaged model's folder or downloading a Hub model as needed.</summary>
    public static Task<string> ResolveAsync(ParseResult parse, string model, string role, CancellationToken ct) =>
        ModelFolders.ResolveAsync(model, role, parse.InvocationConfiguration.Error, ct);
}
