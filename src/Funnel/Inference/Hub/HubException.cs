using System.Net;

namespace Funnel.Inference.Hub;

/// <summary>What went wrong while resolving a model; the message says what to do about it.</summary>
public enum HubErrorKind
{
    /// <summary>The argument is neither a folder nor a valid <c>org/name[@revision]</c> id, or an option is malformed.</summary>
    InvalidArgument,
    /// <summary>No such model, revision or file on the Hub.</summary>
    NotFound,
    /// <summary>The model is private or gated (HTTP 401/403): a token with access is needed.</summary>
    Unauthorized,
    /// <summary>The Hub could not be reached, or kept failing, after the allowed retries.</summary>
    Network,
    /// <summary>A downloaded file does not match its announced size or SHA-256.</summary>
    Integrity,
    /// <summary>Offline mode and the cache lacks the model.</summary>
    NotCached,
    /// <summary>The repository has no weights Funnel can load (no safetensors and no ONNX export), or the server broke the Hub protocol.</summary>
    Unsupported,
}

/// <summary>A model could not be resolved to a local folder.</summary>
public sealed class HubException(HubErrorKind reason, string message, Exception? innerException = null, HttpStatusCode? statusCode = null)
    : FunnelException(KindOf(reason), message, innerException)
{
    /// <summary>What went wrong, in the hub's terms (<see cref="FunnelException.Kind"/> is the general kind).</summary>
    public HubErrorKind Reason { get; } = reason;

    /// <summary>The HTTP status that caused the error, when there was one.</summary>
    public HttpStatusCode? StatusCode { get; } = statusCode;

    // A download that fails its checksum is the transfer's fault, not the user's: retrying may help.
    private static FunnelErrorKind KindOf(HubErrorKind reason) => reason switch
    {
        HubErrorKind.InvalidArgument => FunnelErrorKind.InvalidInput,
        HubErrorKind.NotFound or HubErrorKind.NotCached => FunnelErrorKind.NotFound,
        HubErrorKind.Unauthorized => FunnelErrorKind.Unauthorized,
        HubErrorKind.Network or HubErrorKind.Integrity => FunnelErrorKind.Unavailable,
        HubErrorKind.Unsupported => FunnelErrorKind.Unsupported,
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, null),
    };
}
