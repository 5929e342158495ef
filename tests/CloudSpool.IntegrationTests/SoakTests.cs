using CloudSpool.TestSupport;
using CloudSpool.TestSupport.Soak;
using Xunit.Abstractions;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The short soak (issue 7): Azurite, Dovecot, the worker, the edge, POP3 clients and an SMTP server run together as
/// real processes for about two minutes under continuous mail and every fault of the timeline; then every invariant is
/// checked. `bench/run soak --minutes 30` runs the same soak for longer.
/// </summary>
public sealed class SoakTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Two_minute_soak_with_faults_keeps_every_invariant()
    {
        var report = await SoakRunner.RunAsync(new SoakOptions
        {
            LoadDuration = TimeSpan.FromSeconds(90),
            DrainTimeout = TimeSpan.FromMinutes(4),
            Faults = true,
            CorpusFiles = Corpus.Files(),
            Log = output.WriteLine,
        }, CancellationToken.None);
        output.WriteLine(report.ToString());
        Assert.True(report.Passed, report.ToString());
    }
}
