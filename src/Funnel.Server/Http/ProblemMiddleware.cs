using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.WebUtilities;

namespace Funnel.Server.Http;

/// <summary>
/// Turns every failure into an RFC 7807 <c>application/problem+json</c> response: Funnel's exceptions by their
/// <see cref="FunnelException.Kind"/> (<see cref="Of"/>, the one place the service decides a kind's status: refused requests
/// are <see cref="ApiException"/>s, an overloaded model 429 with <c>Retry-After</c>, …), Kestrel's request errors (oversize
/// body, …), and anything unexpected (500 with a trace id, never a stack trace).
/// </summary>
internal sealed class ProblemMiddleware(RequestDelegate next, ILogger<ProblemMiddleware> logger)
{
    /// <summary>What a response says: status, title, detail, TEI's error category (<c>error_type</c>, so that its clients
    /// understand us too), the offending field and the seconds for <c>Retry-After</c>.</summary>
    internal readonly record struct Problem(int Status, string Title, string Detail, string ErrorType, string? Field = null, int? RetryAfterSeconds = null);

    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is left to answer (499 only labels the request in the metrics).
            if (!context.Response.HasStarted) context.Response.StatusCode = StatusCodes.Status499ClientClosedRequest;
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            Problem problem = ToProblem(ex);
            if (problem.Status >= 500 && ex is not FunnelException)
                logger.LogError(ex, "Unhandled error on {Method} {Path} (trace {TraceId})", context.Request.Method, context.Request.Path, TraceId(context));
            await WriteAsync(context, problem);
        }
    }

    /// <summary>
    /// The status, title and error category of each kind of failure. A model that gives non-finite output is at fault, not
    /// the request, but the request cannot be answered: 422 names why instead of a bare 500. Damaged stored data is the
    /// server's fault (500, naming the file so that an operator can run <c>funnel collection recover</c>).
    /// </summary>
    public static (int Status, string Title, string ErrorType) Of(FunnelErrorKind kind) => kind switch
    {
        FunnelErrorKind.InvalidInput => (StatusCodes.Status400BadRequest, "Invalid request", "Validation"),
        FunnelErrorKind.Unsupported => (StatusCodes.Status400BadRequest, "Not supported", "Validation"),
        FunnelErrorKind.TooLarge => (StatusCodes.Status413PayloadTooLarge, "Payload too large", "Validation"),
        FunnelErrorKind.Unauthorized => (StatusCodes.Status401Unauthorized, "Unauthorized", "Unauthorized"),
        FunnelErrorKind.NotFound => (StatusCodes.Status404NotFound, "Not found", "NotFound"),
        FunnelErrorKind.Conflict => (StatusCodes.Status409Conflict, "Conflict", "Conflict"),
        FunnelErrorKind.InvalidModelOutput => (StatusCodes.Status422UnprocessableEntity, "Model output is not finite", "Backend"),
        FunnelErrorKind.Overloaded => (StatusCodes.Status429TooManyRequests, "Too many requests", "Overloaded"),
        // The request's own deadline (timeout_ms) cannot be met; retrying once the queue drained may succeed.
        FunnelErrorKind.DeadlineUnmet => (StatusCodes.Status503ServiceUnavailable, "Deadline cannot be met", "Overloaded"),
        FunnelErrorKind.Unavailable => (StatusCodes.Status503ServiceUnavailable, "Service unavailable", "Unhealthy"),
        FunnelErrorKind.Corrupt => (StatusCodes.Status500InternalServerError, "Stored data is damaged", "Backend"),
        FunnelErrorKind.Diverged => (StatusCodes.Status500InternalServerError, "Training diverged", "Backend"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "no HTTP status for this kind of failure"),
    };

    private static Problem ToProblem(Exception ex)
    {
        switch (ex)
        {
            case FunnelException funnel:
                (int status, string title, string errorType) = Of(funnel.Kind);
                var api = funnel as ApiException;
                int? retry = funnel is Inference.ModelUnavailableException unavailable ? RetryAfter(unavailable.RetryAfter) : api?.RetryAfterSeconds;
                return new Problem(status, api?.Title ?? title, funnel.Message, errorType, api?.Field, retry);
            case BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }:
                return ToProblem(ApiException.TooLarge("the request body is larger than the server's limit (see max_request_bytes in GET /info)"));
            case BadHttpRequestException bad:
                return new Problem(bad.StatusCode, ReasonPhrases.GetReasonPhrase(bad.StatusCode), bad.Message, "Validation");
            default:
                return new Problem(StatusCodes.Status500InternalServerError, "Internal server error",
                    "the server failed to handle this request; the trace id identifies it in the server's log", "Backend");
        }
    }

    /// <summary>Whole seconds of an expected wait, at least 1 (Retry-After has no finer unit).</summary>
    private static int RetryAfter(TimeSpan wait) => (int)Math.Clamp(Math.Ceiling(wait.TotalSeconds), 1, 3600);

    /// <summary>Writes <paramref name="problem"/> as problem+json (with TEI's <c>error</c>/<c>error_type</c> members).</summary>
    private static async Task WriteAsync(HttpContext context, Problem problem)
    {
        HttpResponse response = context.Response;
        response.Clear();
        response.StatusCode = problem.Status;
        response.ContentType = "application/problem+json";
        if (problem.RetryAfterSeconds is { } retry) response.Headers.RetryAfter = retry.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (problem.Status == StatusCodes.Status401Unauthorized) response.Headers.WWWAuthenticate = "Bearer";

        await using var json = new Utf8JsonWriter(response.Body, new JsonWriterOptions { Encoder = ApiJson.Options.Encoder });
        json.WriteStartObject();
        json.WriteString("type", TypeUri(problem.Status));
        json.WriteString("title", problem.Title);
        json.WriteNumber("status", problem.Status);
        json.WriteString("detail", problem.Detail);
        json.WriteString("instance", context.Request.Path.Value);
        if (problem.Field is not null) json.WriteString("field", problem.Field);
        json.WriteString("traceId", TraceId(context));
        json.WriteString("error", problem.Detail);
        json.WriteString("error_type", problem.ErrorType);
        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted);
    }

    /// <summary>Problem bodies for the framework's own empty error responses (unknown route 404, wrong method 405, …).</summary>
    public static Task WriteStatusCodePageAsync(StatusCodeContext status)
    {
        HttpContext context = status.HttpContext;
        int code = context.Response.StatusCode;
        string detail = code switch
        {
            StatusCodes.Status404NotFound => $"no endpoint at {context.Request.Path}; GET /openapi.json lists them",
            StatusCodes.Status405MethodNotAllowed => $"{context.Request.Method} is not allowed on {context.Request.Path}",
            StatusCodes.Status415UnsupportedMediaType => "send the body as application/json",
            _ => ReasonPhrases.GetReasonPhrase(code),
        };
        string errorType = code == StatusCodes.Status404NotFound ? "NotFound" : "Validation";
        return WriteAsync(context, new Problem(code, ReasonPhrases.GetReasonPhrase(code), detail, errorType));
    }

    private static string TraceId(HttpContext context) => Activity.Current?.Id ?? context.TraceIdentifier;

    private static string TypeUri(int status) => status switch
    {
        400 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1",
        401 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2",
        404 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.5",
        405 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.6",
        409 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.10",
        413 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.14",
        415 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.16",
        422 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.21",
        429 => "https://www.rfc-editor.org/rfc/rfc6585#section-4",
        500 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.1",
        503 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4",
        _ => "about:blank",
    };
}
