using Funnel.Cli;
using Funnel.Evaluation;
using Funnel.Inference;
using Funnel.Inference.Hub;
using Funnel.Retrieval;
using Funnel.Server.Batching;
using Funnel.Server.Http;
using Funnel.Training;

namespace Funnel.Tests;

/// <summary>
/// Each kind of failure is mapped once by each front end: the CLI to an exit code (<see cref="CliAction.ExitCode"/>), the
/// service to an HTTP status (<see cref="ProblemMiddleware.Of"/>). Every kind must have both, and each exception type keeps
/// the exit code and status it had before the kinds existed.
/// </summary>
public sealed class FunnelErrorKindTests
{
    public static TheoryData<FunnelErrorKind> Kinds() => [.. Enum.GetValues<FunnelErrorKind>()];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EveryKindHasAnExitCodeAndAnHttpStatus(FunnelErrorKind kind)
    {
        Assert.Contains(CliAction.ExitCode(kind), new[] { CliAction.UsageError, CliAction.Failed });
        (int status, string title, string errorType) = ProblemMiddleware.Of(kind);
        Assert.InRange(status, 400, 599);
        Assert.False(string.IsNullOrWhiteSpace(title));
        Assert.Contains(errorType, new[] { "Validation", "NotFound", "Conflict", "Backend", "Overloaded", "Unhealthy", "Unauthorized" });
    }

    public static TheoryData<Exception, int, int> Exceptions() => new()
    {
        // exception, CLI exit code, HTTP status: the values the CLI's list of types and the middleware's switch gave.
        { new CollectionCorruptException("/c/wal-000000.log", 24, "corrupt"), 2, 500 },
        { new CollectionFolderException("in use"), 2, 409 },
        { new BiEncoderMismatchException("other model"), 2, 409 },
        { new ModelFormatException("bad config.json"), 2, 400 },
        { new ModelOutputException("NaN"), 2, 422 },
        { new InputTooLongException(0, 600, 512), 2, 413 },
        { new DatasetFormatException("qrels.tsv", 3, "bad"), 2, 400 },
        { new OutputFolderException("not a run"), 2, 409 },
        { new TrainingDivergedException("loss is NaN"), 1, 500 },
        { new ModelUnavailableException("busy", ModelUnavailableReason.Overloaded, TimeSpan.FromSeconds(3)), 1, 429 },
        { new ModelUnavailableException("late", ModelUnavailableReason.DeadlineUnmet, TimeSpan.FromSeconds(3)), 1, 503 },
        { new QueueFullException("full", 10, 5, 12, TimeSpan.FromSeconds(1)), 1, 429 },
        { new DeadlineException("late", TimeSpan.FromSeconds(1)), 1, 503 },
        { new HubException(HubErrorKind.InvalidArgument, "bad id"), 2, 400 },
        { new HubException(HubErrorKind.NotFound, "no such model"), 2, 404 },
        { new HubException(HubErrorKind.NotCached, "offline"), 2, 404 },
        { new HubException(HubErrorKind.Network, "unreachable"), 1, 503 },
        { new HubException(HubErrorKind.Integrity, "sha mismatch"), 1, 503 },
        { new HubException(HubErrorKind.Unauthorized, "gated"), 1, 401 },
        // The one change: a repository without loadable weights exited 1 (any other HubException); it is the user's pick to
        // change, as a model folder Funnel cannot load (ModelFormatException) always was, so now 2.
        { new HubException(HubErrorKind.Unsupported, "no safetensors and no ONNX export"), 2, 400 },
        { ApiException.Malformed("not JSON"), 2, 400 },
        { ApiException.NotFound("no collection"), 2, 404 },
        { ApiException.Unauthorized("no key"), 1, 401 },
        { ApiException.Unavailable("stopping"), 1, 503 },
    };

    [Theory]
    [MemberData(nameof(Exceptions))]
    public void EachExceptionTypeKeepsItsExitCodeAndStatus(Exception exception, int exitCode, int status)
    {
        FunnelErrorKind kind = Assert.IsAssignableFrom<FunnelException>(exception).Kind;
        Assert.Equal(kind, CliAction.KindOf(exception));
        Assert.Equal(exitCode, CliAction.ExitCode(kind));
        Assert.Equal(status, ProblemMiddleware.Of(kind).Status);
    }

    [Fact]
    public void TheFrameworksExceptionsAreClassifiedAsTheCliAlwaysDid()
    {
        Assert.Equal(2, CliAction.ExitCode(CliAction.KindOf(new ArgumentOutOfRangeException("BatchSize"))!.Value));
        Assert.Equal(2, CliAction.ExitCode(CliAction.KindOf(new FileNotFoundException("x"))!.Value));
        Assert.Equal(2, CliAction.ExitCode(CliAction.KindOf(new InvalidDataException("x"))!.Value));
        Assert.Equal(2, CliAction.ExitCode(CliAction.KindOf(new FormatException("x"))!.Value));
        Assert.Equal(1, CliAction.ExitCode(CliAction.KindOf(new IOException("disk full"))!.Value));
        Assert.Equal(1, CliAction.ExitCode(CliAction.KindOf(new UnauthorizedAccessException("denied"))!.Value));
        // A bug is not classified: it keeps its stack trace.
        Assert.Null(CliAction.KindOf(new InvalidOperationException("bug")));
        Assert.Null(CliAction.KindOf(new NullReferenceException()));
    }
}
