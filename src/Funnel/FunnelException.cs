namespace Funnel;

/// <summary>
/// What kind of failure a <see cref="FunnelException"/> is. Front ends decide what each kind means to their users once (the CLI
/// an exit code, the service an HTTP status), so a new exception needs a kind, not a new entry in every front end's list.
/// </summary>
public enum FunnelErrorKind
{
    /// <summary>An argument, option, request field or input file is not what was expected; the message names it.</summary>
    InvalidInput,
    /// <summary>An input is larger than a limit allows (a text longer than the model's window, a request over its size).</summary>
    TooLarge,
    /// <summary>A model, collection, document or file that was asked for does not exist.</summary>
    NotFound,
    /// <summary>The request contradicts the current state: a folder in use or holding something else, a name taken, vectors of another model.</summary>
    Conflict,
    /// <summary>Stored data is damaged (beyond a torn tail); nothing was changed, and the message names the file.</summary>
    Corrupt,
    /// <summary>A model gave NaN or ±∞ for an input: it cannot be used on it as it is.</summary>
    InvalidModelOutput,
    /// <summary>Training stopped because the loss or a gradient stopped being finite.</summary>
    Diverged,
    /// <summary>A model's queue holds more work than it can start soon; retry later.</summary>
    Overloaded,
    /// <summary>The call's own deadline cannot be met.</summary>
    DeadlineUnmet,
    /// <summary>A service this needs (the model hub, the server itself while stopping) cannot be reached or did not deliver.</summary>
    Unavailable,
    /// <summary>Credentials are missing or not valid.</summary>
    Unauthorized,
    /// <summary>Asks for something Funnel does not do (a model without loadable weights, an unsupported option).</summary>
    Unsupported,
}

/// <summary>
/// The base of Funnel's own exceptions: the message says what is wrong in words for the user (naming the file, field or option),
/// and <see cref="Kind"/> says what kind of failure it is, for front ends to map once.
/// </summary>
public abstract class FunnelException(FunnelErrorKind kind, string message, Exception? innerException = null) : Exception(message, innerException)
{
    public FunnelErrorKind Kind { get; } = kind;
}
