namespace Funnel.Inference;

/// <summary>A model folder or weight file that cannot be loaded; the message names the file,
/// tensor or field and what was expected.</summary>
public sealed class ModelFormatException : Exception
{
    public ModelFormatException(string message) : base(message) { }

    public ModelFormatException(string message, Exception inner) : base(message, inner) { }
}
