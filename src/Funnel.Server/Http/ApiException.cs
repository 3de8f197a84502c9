namespace Funnel.Server.Http;

/// <summary>
/// A request the service refuses, turned into an RFC 7807 problem by <see cref="ProblemMiddleware"/>.
/// <see cref="ErrorType"/> is text-embeddings-inference's error category, so its clients understand us too.
/// </summary>
public sealed class ApiException(int status, string title, string detail, string errorType, string? field = null) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
    public string Detail { get; } = detail;
    public string ErrorType { get; } = errorType;

    /// <summary>The JSON path of the offending field (e.g. <c>inputs[3]</c>), when one field is at fault.</summary>
    public string? Field { get; } = field;

    /// <summary>Seconds after which a retry may succeed (sent as <c>Retry-After</c>).</summary>
    public int? RetryAfterSeconds { get; init; }

    public static ApiException Invalid(string field, string detail) =>
        new(StatusCodes.Status400BadRequest, "Invalid request", detail, "Validation", field);

    public static ApiException Malformed(string detail) =>
        new(StatusCodes.Status400BadRequest, "Malformed JSON", detail, "Validation");

    public static ApiException TooLarge(string detail, string? field = null) =>
        new(StatusCodes.Status413PayloadTooLarge, "Payload too large", detail, "Validation", field);

    public static ApiException NotFound(string detail) =>
        new(StatusCodes.Status404NotFound, "Not found", detail, "NotFound");

    public static ApiException Conflict(string detail, string? field = null) =>
        new(StatusCodes.Status409Conflict, "Conflict", detail, "Conflict", field);

    public static ApiException Overloaded(string detail, int retryAfterSeconds) =>
        new(StatusCodes.Status429TooManyRequests, "Too many requests", detail, "Overloaded") { RetryAfterSeconds = retryAfterSeconds };

    /// <summary>The request's own deadline (<c>timeout_ms</c>) cannot be met; retrying once the queue drained may succeed.</summary>
    public static ApiException DeadlineUnmet(string detail, int retryAfterSeconds) =>
        new(StatusCodes.Status503ServiceUnavailable, "Deadline cannot be met", detail, "Overloaded") { RetryAfterSeconds = retryAfterSeconds };

    public static ApiException Unavailable(string detail) =>
        new(StatusCodes.Status503ServiceUnavailable, "Service unavailable", detail, "Unhealthy");

    public static ApiException Unauthorized(string detail) =>
        new(StatusCodes.Status401Unauthorized, "Unauthorized", detail, "Unauthorized");
}
