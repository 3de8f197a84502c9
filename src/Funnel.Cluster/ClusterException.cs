namespace Funnel.Cluster;

/// <summary>What went wrong, as a client should act on it (the HTTP service maps these to 400, 404, 409 and 503).</summary>
public enum ClusterProblem
{
    /// <summary>The request asks for something impossible (more replicas than nodes, a shard count out of range).</summary>
    Invalid,

    /// <summary>No such collection or shard.</summary>
    NotFound,

    /// <summary>The name is taken, or the nodes disagree (another Funnel version or bi-encoder).</summary>
    Conflict,

    /// <summary>Too few replicas are alive to do it now (a write below its quorum); retrying later can succeed.</summary>
    Unavailable,
}

/// <summary>A cluster operation that cannot be done, with the shard, node or field it concerns named in the message.</summary>
[GenerateSerializer, Alias("funnel.cluster-exception")]
public sealed class ClusterException : Exception
{
    public ClusterException(ClusterProblem problem, string message, string? field = null) : base(message)
    {
        Problem = problem;
        Field = field;
    }

    [Id(0)] public ClusterProblem Problem { get; }

    /// <summary>The request field at fault, when one is.</summary>
    [Id(1)] public string? Field { get; }
}
