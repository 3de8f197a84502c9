using System.Text.Json;
using Funnel.Inference;

namespace Funnel.Tests.Inference;

/// <summary>
/// Two small random bi-encoders with the same weights (seed 5): <see cref="Prompted"/>'s config_sentence_transformers.json has a
/// "query" and a "passage" prompt, <see cref="Plain"/>'s has none. Vectors "as a role" are checked against
/// <c>Plain.Encode(prompt + text)</c>: the same weights with the prompt typed in by hand.
/// </summary>
public sealed class PromptModels : IDisposable
{
    public const string QueryPrompt = "query: ";
    public const string PassagePrompt = "passage: ";

    public string Root { get; } = Directory.CreateTempSubdirectory("funnel-prompt-models-").FullName;
    public string PromptedFolder => Path.Combine(Root, "prompted");
    public string PlainFolder => Path.Combine(Root, "plain");
    public SentenceEncoder Prompted { get; }
    public SentenceEncoder Plain { get; }

    public PromptModels()
    {
        Write(PromptedFolder, new Dictionary<string, string> { ["query"] = QueryPrompt, ["passage"] = PassagePrompt });
        Write(PlainFolder, new Dictionary<string, string>());
        Prompted = SentenceEncoder.Load(PromptedFolder);
        Plain = SentenceEncoder.Load(PlainFolder);
    }

    /// <summary>A small seed-5 bi-encoder whose config_sentence_transformers.json has these prompts.</summary>
    public static void Write(string folder, IReadOnlyDictionary<string, string> prompts, string? defaultPromptName = null)
    {
        SeededCheckpoint.Write(folder, TestPaths.SharedModel("all-MiniLM-L6-v2"), 5, new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small });
        File.WriteAllText(Path.Combine(folder, "config_sentence_transformers.json"),
            JsonSerializer.Serialize(new Dictionary<string, object?> { ["prompts"] = prompts, ["default_prompt_name"] = defaultPromptName }));
    }

    /// <summary>What the prompted model must give a query: the plain model on the query prompt typed in.</summary>
    public float[] ExpectedQuery(string text) => Plain.Encode([QueryPrompt + text], promptName: null)[0];

    /// <summary>What the prompted model must give a document: the plain model on the passage prompt typed in.</summary>
    public float[] ExpectedDocument(string text) => Plain.Encode([PassagePrompt + text], promptName: null)[0];

    public void Dispose()
    {
        Prompted.Dispose();
        Plain.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}
