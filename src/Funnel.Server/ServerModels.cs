using Funnel.Inference;

namespace Funnel.Server;

/// <summary>
/// The loaded models the service exposes, each optional. The caller owns (and disposes) the encoders; the
/// service only batches calls into them. The ids are what clients see (a Hub id or a folder name).
/// </summary>
public sealed record ServerModels(
    SentenceEncoder? BiEncoder = null,
    string? BiEncoderId = null,
    CrossEncoder? CrossEncoder = null,
    string? CrossEncoderId = null);
