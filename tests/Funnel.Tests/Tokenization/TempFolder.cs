namespace Funnel.Tests.Tokenization;

/// <summary>A fresh folder under the system temp directory, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("funnel-tok-").FullName;

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
