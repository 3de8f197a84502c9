using System.Security.Cryptography;
using System.Text;

namespace Funnel.Server.Http;

/// <summary>Requires <c>Authorization: Bearer KEY</c> on every route except <c>/health</c> when a key is configured.</summary>
internal sealed class ApiKeyMiddleware(RequestDelegate next, ServerOptions options)
{
    private readonly byte[]? _key = options.ApiKey is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));

    public Task InvokeAsync(HttpContext context)
    {
        if (_key is null || context.Request.Path.Equals("/health", StringComparison.OrdinalIgnoreCase))
            return next(context);
        string? header = context.Request.Headers.Authorization;
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            throw ApiException.Unauthorized("this server needs an API key: send 'Authorization: Bearer <key>'");
        // Hashing first makes the comparison constant-time whatever the lengths.
        byte[] given = SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()));
        if (!CryptographicOperations.FixedTimeEquals(given, _key))
            throw ApiException.Unauthorized("the API key is not valid");
        return next(context);
    }
}
