using Funnel.Retrieval;

namespace Funnel.Tests.Retrieval;

public class ReciprocalRankFusionTests
{
    [Fact]
    public void MatchesHandComputedScores()
    {
        // k = 60: a = 1/61; b = 1/62 + 1/61; c = 1/63 + 1/62; d = 1/63.
        var fused = ReciprocalRankFusion.Fuse<string>([["a", "b", "c"], ["b", "c", "d"]]);
        Assert.Equal(["b", "c", "a", "d"], fused.Select(f => f.Key));
        Assert.Equal(1.0 / 62 + 1.0 / 61, fused[0].Score, 15);
        Assert.Equal(1.0 / 63 + 1.0 / 62, fused[1].Score, 15);
        Assert.Equal(1.0 / 61, fused[2].Score, 15);
        Assert.Equal(1.0 / 63, fused[3].Score, 15);
    }

    [Fact]
    public void TiesFavourTheBetterRankThenTheEarlierList()
    {
        // x and y are both at rank 1 once; z and w at rank 2 once: each pair ties and keeps list order.
        var fused = ReciprocalRankFusion.Fuse<string>([["x", "z"], ["y", "w"]], k: 10);
        Assert.Equal(["x", "y", "z", "w"], fused.Select(f => f.Key));
    }

    [Fact]
    public void KChangesHowMuchTopRanksDominate()
    {
        // k = 0: "top" = 1/1 beats "both" = 1/3 + 1/3. k = 60: "both" = 2/63 ≈ 0.0317 beats "top" = 1/61 ≈ 0.0164.
        IReadOnlyList<IReadOnlyList<string>> lists = [["top", "a", "both"], ["b", "c", "both"]];
        Assert.Equal("top", ReciprocalRankFusion.Fuse(lists, k: 0)[0].Key);
        Assert.Equal("both", ReciprocalRankFusion.Fuse(lists, k: 60)[0].Key);
    }

    [Fact]
    public void WeightsScaleEachRankingsContribution()
    {
        // k = 0, weights 0.75 and 0.25: a = 0.75/1 + 0.25/2 = 0.875; b = 0.75/2 + 0.25/1 = 0.625.
        var fused = ReciprocalRankFusion.Fuse<string>([["a", "b"], ["b", "a"]], k: 0, weights: [0.75, 0.25]);
        Assert.Equal(["a", "b"], fused.Select(f => f.Key));
        Assert.Equal(0.875, fused[0].Score, 15);
        Assert.Equal(0.625, fused[1].Score, 15);
        // A weight of 0 leaves the other ranking's order, whatever the first says.
        Assert.Equal(["b", "a", "c"], ReciprocalRankFusion.Fuse<string>([["a", "c", "b"], ["b", "a", "c"]], weights: [0, 1]).Select(f => f.Key));
        // Weights of 1 are the unweighted fusion.
        IReadOnlyList<IReadOnlyList<string>> lists = [["a", "b", "c"], ["b", "c", "d"]];
        Assert.Equal(ReciprocalRankFusion.Fuse(lists), ReciprocalRankFusion.Fuse(lists, weights: [1, 1]));
    }

    [Fact]
    public void BadWeightsAreRefused()
    {
        IReadOnlyList<IReadOnlyList<string>> lists = [["a"], ["b"]];
        Assert.Contains("1 weights for 2 rankings", Assert.Throws<ArgumentException>(() => ReciprocalRankFusion.Fuse(lists, weights: [1])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ReciprocalRankFusion.Fuse(lists, weights: [1, -0.5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReciprocalRankFusion.Fuse(lists, weights: [double.NaN, 1]));
    }

    [Fact]
    public void EmptyInputsGiveAnEmptyRanking()
    {
        Assert.Empty(ReciprocalRankFusion.Fuse<int>([]));
        Assert.Empty(ReciprocalRankFusion.Fuse<int>([[], []]));
    }
}
