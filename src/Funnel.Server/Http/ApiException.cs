namespace Funnel.Server.Http;

/// <summary>
/// A request the service refuses, turned into an RFC 7807 problem by <see cref="ProblemMiddleware"/>, whose
/// <see cref="ProblemMiddleware.Of"/> gives each <see cref="FunnelException.Kind"/> its status.
/// </summary>
internal sealed class ApiException(FunnelErrorKind kind, string detail, string? field = null, string? title = null) : FunnelException(kind, detail)
{
    public string Detail => Message;

    /// <summary>The JSON path of the offending field (e.g. <c>inputs[3]</c>), when one field is at fault.</summary>
    public string? Field { get; } = field;

    /// <summary>A title more precise than the kind's (e.g. "Malformed JSON"), or null.</summary>
    public string? Title { get; } = title;

    /// <summary>The HTTP status this refusal is answered with.</summary>
    public int Status => ProblemMiddleware.Of(Kind).Status;

    /// <summary>Seconds after which a retry may succeed (sent as <c>Retry-After</c>).</summary>
    public int? RetryAfterSeconds { get; init; }

    public static ApiException Invalid(string field, string detail) => new(FunnelErrorKind.InvalidInput, detail, field);

    public static ApiException Malformed(string detail) => new(FunnelErrorKind.InvalidInput, detail, title: "Malformed JSON");

    public static ApiException TooLarge(string detail, string? field = null) => new(FunnelErrorKind.TooLarge, detail, field);

    public static ApiException NotFound(string detail) => new(FunnelErrorKind.NotFound, detail);

    public static ApiException Conflict(string detail, string? field = null) => new(FunnelErrorKind.Conflict, detail, field);

    public static ApiException Unavailable(string detail) => new(FunnelErrorKind.Unavailable, detail);

    public static ApiException Unauthorized(string detail) => new(FunnelErrorKind.Unauthorized, detail);
}
