namespace Funnel.Inference;

/// <summary>A model folder or weight file that cannot be loaded; the message names the file,
/// tensor or field and what was expected.</summary>
public sealed class ModelFormatException : FunnelException
{
    public ModelFormatException(string message) : base(FunnelErrorKind.InvalidInput, message) { }

    public ModelFormatException(string message, Exception inner) : base(FunnelErrorKind.InvalidInput, message, inner) { }
}
