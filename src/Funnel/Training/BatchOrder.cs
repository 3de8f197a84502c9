using Funnel.Training.Data;

namespace Funnel.Training;

/// <summary>Arranging an epoch's shuffled rows into batches.</summary>
internal static class BatchOrder
{
    /// <summary>
    /// sentence-transformers' NO_DUPLICATES sampling, keeping the batch count: walking the order batch by batch, a row
    /// sharing a text with a row already in its batch is swapped with the first later row that shares none. When no
    /// such row is left (the end of an epoch of very repetitive data) the duplicate stays.
    /// </summary>
    public static void SpreadDuplicates(int[] order, IReadOnlyList<TrainingExample> rows, int batchSize)
    {
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            int end = Math.Min(order.Length, start + batchSize);
            for (int slot = start; slot < end; slot++)
            {
                int swap = slot;
                while (swap < order.Length && rows[order[swap]].Texts.Any(seen.Contains)) swap++;
                if (swap < order.Length) (order[slot], order[swap]) = (order[swap], order[slot]);
                foreach (string text in rows[order[slot]].Texts) seen.Add(text);
            }
        }
    }
}
