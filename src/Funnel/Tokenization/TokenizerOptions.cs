namespace Funnel.Tokenization;

public enum TruncationStrategy { LongestFirst, OnlyFirst, OnlySecond }

public enum TruncationSide { Right, Left }

/// <summary>The <c>truncation</c> section of <c>tokenizer.json</c>; MaxLength counts the special tokens.</summary>
public sealed record TruncationOptions(int MaxLength, TruncationStrategy Strategy = TruncationStrategy.LongestFirst, TruncationSide Side = TruncationSide.Right);

/// <summary>
/// The <c>padding</c> section of <c>tokenizer.json</c>: pad to the batch's longest (FixedLength null)
/// or to FixedLength, rounded up to a multiple of PadToMultipleOf when set.
/// </summary>
public sealed record PaddingOptions(int PadId, int PadTypeId = 0, int? FixedLength = null, int? PadToMultipleOf = null, TruncationSide Side = TruncationSide.Right);
