using System.Diagnostics;
using Funnel.Server.Metrics;

namespace Funnel.Server.Http;

/// <summary>Counts requests by route template, method and status, and records their latency.</summary>
internal sealed class RequestMetricsMiddleware(RequestDelegate next, ServerMetrics metrics)
{
    public async Task InvokeAsync(HttpContext context)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            // The template, not the path, so that /collections/{name} stays one series however many names exist.
            string route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            string method = route == "unmatched" && !HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsPost(context.Request.Method)
                ? "other" // arbitrary methods on unknown paths must not grow the series without bound
                : context.Request.Method;
            metrics.RecordRequest(route, method, context.Response.StatusCode, Stopwatch.GetElapsedTime(start));
        }
    }
}
