using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Funnel.Inference.Hub;

/// <summary>A model on the Hub: <c>org/name</c> at a revision (branch, tag or commit; default <c>main</c>).</summary>
public sealed partial record HubModelId
{
    public const string DefaultRevision = "main";

    public HubModelId(string repoId, string revision = DefaultRevision)
    {
        if (!IsValidRepoId(repoId))
            throw new HubException(HubErrorKind.InvalidArgument, $"'{repoId}' is not a Hub model id: expected org/name (letters, digits, '-', '_', '.')");
        if (!IsValidRevision(revision))
            throw new HubException(HubErrorKind.InvalidArgument, $"'{revision}' is not a valid revision: expected a branch, tag or commit hash");
        RepoId = repoId;
        Revision = revision;
    }

    public string RepoId { get; }

    public string Revision { get; }

    /// <summary>The repository's folder in the hub cache, as huggingface_hub names it.</summary>
    public string CacheFolderName => "models--" + RepoId.Replace("/", "--", StringComparison.Ordinal);

    /// <summary>True when the revision is a full commit hash, which never moves.</summary>
    public bool RevisionIsCommit => IsCommitHash(Revision);

    /// <summary>Parses <c>org/name</c> or <c>org/name@revision</c>; false when the text has another shape.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out HubModelId? id)
    {
        int at = text.IndexOf('@', StringComparison.Ordinal);
        string repo = at < 0 ? text : text[..at];
        string revision = at < 0 ? DefaultRevision : text[(at + 1)..];
        id = IsValidRepoId(repo) && IsValidRevision(revision) ? new HubModelId(repo, revision) : null;
        return id is not null;
    }

    /// <summary>Parses <c>org/name</c> or <c>org/name@revision</c>.</summary>
    /// <exception cref="HubException">The text has another shape.</exception>
    public static HubModelId Parse(string text) =>
        TryParse(text, out HubModelId? id) ? id
            : throw new HubException(HubErrorKind.InvalidArgument, $"'{text}' is not a Hub model id: expected org/name or org/name@revision");

    public static bool IsCommitHash(string text) => CommitHash().IsMatch(text);

    public override string ToString() => Revision == DefaultRevision ? RepoId : $"{RepoId}@{Revision}";

    // huggingface_hub's validate_repo_id, with the org made mandatory: a bare name is more likely a mistyped folder.
    private static bool IsValidRepoId(string repoId) =>
        RepoIdPattern().IsMatch(repoId) && !repoId.Contains("--", StringComparison.Ordinal) && !repoId.Contains("..", StringComparison.Ordinal)
        && !repoId.EndsWith(".git", StringComparison.Ordinal);

    // Revisions name refs/<revision> in the cache, so no segment may climb out of it.
    private static bool IsValidRevision(string revision) =>
        revision.Length is > 0 and <= 256 && !revision.StartsWith('/') && !revision.EndsWith('/')
        && !revision.Split('/').Any(segment => segment is "" or "." or "..")
        && !revision.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '\\' or ':' or '?' or '*' or '[' or '~' or '^');

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9_.\-]{1,96}$", RegexOptions.CultureInvariant)]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$", RegexOptions.CultureInvariant)]
    private static partial Regex CommitHash();
}
