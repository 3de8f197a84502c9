using Funnel.Index;

namespace Funnel.Tests.Index;

/// <summary>The visited set and the two heaps of a graph search, against plain collections.</summary>
public sealed class SearchScratchTests
{
    [Fact]
    public void VisitedSetMatchesAHashSetAcrossSearchesAndGrowth()
    {
        var rng = new Random(5);
        var scratch = new SearchScratch();
        for (int search = 0; search < 50; search++)
        {
            // Some searches start on a smaller index than earlier ones, some see slots appear mid-search.
            int slots = rng.Next(1, 5000);
            scratch.NewVisit(slots);
            var expected = new HashSet<int>();
            for (int i = 0; i < 3000; i++)
            {
                int slot = rng.Next(0, slots + (search % 3 == 0 ? 3000 : 0));
                Assert.Equal(expected.Add(slot), scratch.Visit(slot));
            }
        }
    }

    [Fact]
    public void HeapsKeepTheBestAndPopInOrder()
    {
        var rng = new Random(9);
        var bounded = new BoundedHeap();
        var frontier = new CandidateHeap();
        bounded.Reset(25);
        var all = new List<(float, int)>();
        for (int i = 0; i < 1000; i++)
        {
            float d = (float)rng.NextDouble();
            all.Add((d, i));
            bounded.Offer(d, i);
            frontier.Push(d, i);
        }
        var slots = new int[25];
        var dists = new float[25];
        Assert.Equal(25, bounded.DrainAscending(slots, dists));
        Assert.Equal(all.OrderBy(x => x.Item1).Take(25).Select(x => x.Item2), slots);
        var popped = new List<int>();
        while (frontier.Count > 0)
        {
            int peek = frontier.PeekSlot;
            popped.Add(frontier.Pop());
            Assert.Equal(peek, popped[^1]);
        }
        Assert.Equal(all.OrderBy(x => x.Item1).Select(x => x.Item2), popped);
    }
}
