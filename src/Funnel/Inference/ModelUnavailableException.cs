namespace Funnel.Inference;

/// <summary>Why a model cannot take a call now.</summary>
public enum ModelUnavailableReason
{
    /// <summary>Its queue holds more work than it can start soon: retry later.</summary>
    Overloaded,
    /// <summary>The call's own deadline cannot be met.</summary>
    DeadlineUnmet,
}

/// <summary>
/// A model (behind a queue: the service's batchers, a remote endpoint) cannot answer this call in time. The call may be retried
/// after <see cref="RetryAfter"/>; <see cref="Retrieval.SearchPipeline"/> can fall back to first-stage results instead
/// (<see cref="Retrieval.SearchOptions.RerankFallback"/>).
/// </summary>
public sealed class ModelUnavailableException(string message, ModelUnavailableReason reason, TimeSpan retryAfter)
    : FunnelException(reason == ModelUnavailableReason.Overloaded ? FunnelErrorKind.Overloaded : FunnelErrorKind.DeadlineUnmet, message)
{
    public ModelUnavailableReason Reason { get; } = reason;

    /// <summary>The expected wait before the model could start this call.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;
}
