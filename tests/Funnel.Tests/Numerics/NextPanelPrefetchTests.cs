using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class NextPanelPrefetchTests
{
    /// <summary>
    /// Replays the micro-kernel's prefetch schedule (one or two lines at each step where <c>p &amp; EveryMask == 0</c>)
    /// for every tile of a panel: together they must touch every 64-byte line of the next panel, within it.
    /// </summary>
    [Fact]
    public unsafe void The_tiles_of_a_panel_together_prefetch_every_line_of_the_next_panel()
    {
        const int FloatsPerLine = 16;
        float* next = (float*)4096;
        foreach (int k in new[] { 1, 2, 3, 32, 100, 384, 1536 })
            for (int tiles = 1; tiles <= 40; tiles++)
            {
                int lines = 2 * k, share = (lines + tiles - 1) / tiles;
                var touched = new bool[lines];
                for (int tile = 0; tile < tiles; tile++)
                {
                    var pf = NextPanelPrefetch.For(next, k, tile, tiles);
                    float* line = pf.First;
                    for (int p = 0; p < k; p++)
                    {
                        if ((p & pf.EveryMask) != 0) continue;
                        for (int second = 0; second < 2; second++)
                        {
                            long index = (line + second * pf.SecondLine - next) / FloatsPerLine;
                            if (index < lines) touched[index] = true;
                            Assert.True(index >= 0 && index < lines + 2 * share, $"k {k}, tile {tile}/{tiles}: line {index} far outside the panel");
                        }
                        line += FloatsPerLine + pf.SecondLine;
                    }
                }
                Assert.True(touched.All(t => t), $"k {k}, {tiles} tiles: line {Array.IndexOf(touched, false)} of {lines} never prefetched");
            }
    }
}
