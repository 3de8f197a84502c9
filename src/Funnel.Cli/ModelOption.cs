using System.CommandLine;
using Funnel.Inference;
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

    /// <summary>
    /// <c>--precision fp32|bf16|int8</c>: the arithmetic of the model's linear layers. Null when not given, so a collection
    /// command can default to the precision the collection was indexed with.
    /// </summary>
    public static Option<string?> Precision(string defaultText = "fp32")
    {
        var option = new Option<string?>("--precision")
        {
            Description = $"Arithmetic of the linear layers: fp32, or int8 (dynamic quantization: faster, vectors within ~1% of fp32) (default: {defaultText})",
        };
        option.AcceptOnlyFromAmong("fp32", "bf16", "int8");
        return option;
    }

    /// <summary>The precision a <see cref="Precision"/> option names; null when it was not given.</summary>
    public static InferencePrecision? ParsePrecision(string? value) => value switch
    {
        null => null,
        "fp32" => InferencePrecision.Fp32,
        "int8" => InferencePrecision.Int8,
        // Named by the CLI so the refusal says why rather than "unknown value".
        "bf16" => throw new UsageException(
            "--precision bf16 is not available: .NET 10 exposes no AVX512-BF16 (vdpbf16ps) intrinsic, and widening bf16 weights to fp32 " +
            "for the same FMAs is no faster than fp32; use fp32 or int8"),
        _ => throw new UsageException($"--precision must be fp32, bf16 or int8 (got '{value}')"),
    };

    /// <summary>The local folder for a model argument, writing a packaged model's folder or downloading a Hub model as needed.</summary>
    public static Task<string> ResolveAsync(ParseResult parse, string model, string role, CancellationToken ct) =>
        ModelFolders.ResolveAsync(model, role, parse.InvocationConfiguration.Error, ct);
}
